# The cost alarm: a monthly budget of the account, which mails `email` when the month's forecast passes 80% of it
# and when the actual spend passes 100%. Account-wide on purpose: a filter on rlvr's tags would only count once those
# tags are activated as cost allocation tags (a step in the Billing console), and a silent alarm is worse than a
# broad one.

variable "name" {
  type = string
}

variable "limit_usd" {
  type = number
}

variable "email" {
  description = "Who is mailed; empty creates no budget."
  type        = string
}

resource "aws_budgets_budget" "cost" {
  count        = var.email == "" ? 0 : 1
  name         = var.name
  budget_type  = "COST"
  limit_amount = tostring(var.limit_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 80
    threshold_type             = "PERCENTAGE"
    notification_type          = "FORECASTED"
    subscriber_email_addresses = [var.email]
  }

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 100
    threshold_type             = "PERCENTAGE"
    notification_type          = "ACTUAL"
    subscriber_email_addresses = [var.email]
  }
}

variable "workers" {
  description = "GPU worker machines joining the Ray head."
  type        = number
  default     = 2
  validation {
    condition     = var.workers >= 1 && var.workers <= 64 && floor(var.workers) == var.workers
    error_message = "workers: a whole number from 1 to 64."
  }
}

variable "head_instance_type" {
  description = "The head's instance type (it runs Ray's head and the sweep's driver, not the jobs)."
  type        = string
  default     = "m6i.xlarge"
  validation {
    condition     = can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", var.head_instance_type))
    error_message = "head_instance_type: an EC2 instance type such as m6i.xlarge."
  }
}

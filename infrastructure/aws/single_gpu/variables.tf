# The settings of both configurations (aws/ray_cluster links this file). Every string that reaches the boot script
# is validated here and base64-encoded into it (cloud-init.sh.tftpl), so a stray character can neither break the
# script nor run a command.

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region: an AWS region such as us-east-1."
  }
}

variable "instance_type" {
  description = "GPU instance type (g5.xlarge: 1 A10G; p4d.24xlarge: 8 A100, used by one accelerate run)."
  type        = string
  default     = "g5.xlarge"
  validation {
    condition     = can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type: an EC2 instance type such as g5.xlarge."
  }
}

variable "disk_gb" {
  description = "Root disk size (model, checkpoints, image)."
  type        = number
  default     = 200
}

variable "spot" {
  description = "Spot (true, the default: cheaper, may be interrupted and resumed) or on-demand."
  type        = bool
  default     = true
}

variable "ami_name_filter" {
  description = "Deep Learning AMI with NVIDIA drivers, Docker, the AWS CLI and Python 3."
  type        = string
  default     = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *"
}

variable "subnet_id" {
  description = "Subnet to start in (null: the default VPC's default subnet)."
  type        = string
  default     = null
  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id: a subnet id such as subnet-0123456789abcdef0, or null."
  }
}

variable "ssh_cidr_blocks" {
  description = "Addresses allowed to SSH in. Empty (the default): no inbound port; use SSM Session Manager."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.ssh_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "ssh_cidr_blocks: CIDR blocks such as 203.0.113.7/32, and not 0.0.0.0/0."
  }
}

variable "secret_arns" {
  description = "Secrets Manager secrets (JSON maps such as {\"WANDB_API_KEY\": \"...\"}) read at boot by the machine's role: full ARNs."
  type        = list(string)
  default     = []
  validation {
    condition = alltrue([for a in var.secret_arns : can(regex(
    "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", a))])
    error_message = "secret_arns: full secret ARNs, arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters> (no wildcard, no bare name)."
  }
}

variable "repo_url" {
  description = "Git repository of rlvr (or your fork), cloned over HTTPS."
  type        = string
  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+-]+)+/?$", var.repo_url))
    error_message = "repo_url: an https:// address of letters, digits and . _ ~ % + - / only (no quote, space or $)."
  }
}

variable "repo_ref" {
  description = "The commit to run, in full (git rev-parse HEAD): every machine of the run, and every resume, builds exactly this code."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.repo_ref))
    error_message = "repo_ref: a full 40-character commit hash (git rev-parse HEAD), not a branch or a tag."
  }
}

variable "run_name" {
  description = "Names the run's S3 prefix, directory and resources: the same name on a new machine resumes the run."
  type        = string
  default     = "rlvr"
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.run_name))
    error_message = "run_name: 1 to 31 lowercase letters, digits and -, starting with a letter or digit."
  }
}

variable "run_args" {
  description = "The pipeline's overrides, space-separated (e.g. 'experiment=sft_then_grpo'; '-m ...' for a sweep)."
  type        = string
  default     = ""
  validation {
    condition     = length(var.run_args) <= 4096 && !can(regex("[[:cntrl:]]", var.run_args))
    error_message = "run_args: at most 4096 characters, on one line."
  }
}

variable "accelerate" {
  description = "accelerate config under launch/ for a machine with several GPUs: ddp, fsdp, zero2 or zero3."
  type        = string
  default     = "ddp"
  validation {
    condition     = contains(["ddp", "fsdp", "zero2", "zero3"], var.accelerate)
    error_message = "accelerate: ddp, fsdp, zero2 or zero3."
  }
}

variable "keep_alive" {
  description = "Keep the machine up after the pipeline ends, until nobody has been connected for idle_minutes (it terminates at once by default)."
  type        = bool
  default     = false
}

variable "max_hours" {
  description = "Maximum lifetime of each machine: then the run stops as on a spot notice (checkpoint, upload) and the machine terminates."
  type        = number
  default     = 24
  validation {
    condition     = var.max_hours >= 1 && var.max_hours <= 168 && floor(var.max_hours) == var.max_hours
    error_message = "max_hours: a whole number of hours from 1 to 168."
  }
}

variable "idle_minutes" {
  description = "Idle watchdog: a run whose directory has not changed for this long is stopped (checkpoint, upload) and the machine terminates."
  type        = number
  default     = 120
  validation {
    condition     = var.idle_minutes >= 10 && var.idle_minutes <= 1440 && floor(var.idle_minutes) == var.idle_minutes
    error_message = "idle_minutes: a whole number of minutes from 10 to 1440."
  }
}

variable "stop_grace_s" {
  description = "Of a spot notice's 120 s: the time the pipeline gets to finish its step and write a checkpoint (the rest publishes it)."
  type        = number
  default     = 60
  validation {
    condition     = var.stop_grace_s >= 10 && var.stop_grace_s <= 85 && floor(var.stop_grace_s) == var.stop_grace_s
    error_message = "stop_grace_s: 10 to 85 seconds (at least 20 s of the notice must remain to publish the checkpoint)."
  }
}

variable "budget_usd" {
  description = "Monthly cost budget of the account, in USD: budget_email is told at 80% of it (forecast) and 100% (actual)."
  type        = number
  default     = 500
}

variable "budget_email" {
  description = "Who the budget alarm mails (empty: no budget is created)."
  type        = string
  default     = ""
  validation {
    condition     = var.budget_email == "" || can(regex("^[^@\\s\"']+@[^@\\s\"']+\\.[a-z]{2,}$", var.budget_email))
    error_message = "budget_email: an email address, or empty."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete the outputs bucket with its contents. False (the default): destroy stops at a bucket that holds outputs and keeps its key; see README to delete both on purpose."
  type        = bool
  default     = false
}

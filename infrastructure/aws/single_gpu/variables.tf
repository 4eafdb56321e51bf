variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "instance_type" {
  description = "GPU instance type (g5.xlarge: 1 A10G; p4d.24xlarge: 8 A100, used by one accelerate run)."
  type        = string
  default     = "g5.xlarge"
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
  description = "Deep Learning AMI with NVIDIA drivers and Docker."
  type        = string
  default     = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *"
}

variable "subnet_id" {
  description = "Subnet to start in (null: the default VPC's default subnet)."
  type        = string
  default     = null
}

variable "ssh_cidr_blocks" {
  description = "Addresses allowed to SSH in. Empty (the default): no inbound port; use SSM Session Manager."
  type        = list(string)
  default     = []
}

variable "secret_arns" {
  description = "Secrets Manager secrets (JSON maps such as {\"WANDB_API_KEY\": \"...\"}) read at boot by the machine's role."
  type        = list(string)
  default     = []
}

variable "repo_url" {
  description = "Git repository of rlvr (or your fork)."
  type        = string
}

variable "repo_ref" {
  description = "Branch, tag or commit to run."
  type        = string
  default     = "main"
}

variable "run_name" {
  description = "Names the run's S3 prefix and directory: the same name on a new machine resumes the run."
  type        = string
  default     = "rlvr"
}

variable "run_args" {
  description = "The pipeline's overrides, space-separated (e.g. 'experiment=sft_then_grpo'; '-m ...' for a sweep)."
  type        = string
  default     = ""
}

variable "accelerate" {
  description = "accelerate config under launch/ for a machine with several GPUs: ddp, fsdp, zero2 or zero3."
  type        = string
  default     = "ddp"
}

variable "keep_alive" {
  description = "Keep the machine running after the pipeline ends (it shuts down by default)."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let terraform destroy delete the outputs bucket with its contents (sync them elsewhere first)."
  type        = bool
  default     = true
}

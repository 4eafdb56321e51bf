variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  description = "g5.xlarge = 1x A10G 24 GB; g6e.xlarge = 1x L40S 48 GB; p5.48xlarge = 8x H100."
  type        = string
  default     = "g5.xlarge"
}

variable "instance_count" {
  description = "Machines to start; each runs the same command (use different run_args per workspace for sweeps)."
  type        = number
  default     = 1
}

variable "ami_name_filter" {
  description = "AWS Deep Learning AMI with NVIDIA drivers and CUDA."
  type        = string
  default     = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *"
}

variable "key_name" {
  description = "EC2 key pair for SSH."
  type        = string
}

variable "ssh_cidr_blocks" {
  type    = list(string)
  default = []
}

variable "spot" {
  type    = bool
  default = true
}

variable "disk_gb" {
  type    = number
  default = 200
}

variable "repo_url" {
  type = string
}

variable "repo_ref" {
  type    = string
  default = "main"
}

variable "run_args" {
  description = "Arguments to run_pipeline.py, e.g. 'data=gsm8k model=hf model.name_or_path=...' or '-m train.learning_rate=1e-6,3e-6'."
  type        = string
  default     = ""
}

variable "run_name" {
  type    = string
  default = "rlvr"
}

variable "keep_alive" {
  description = "Keep the machine running after the job (otherwise it powers off and stops billing compute)."
  type        = bool
  default     = false
}

variable "wandb_api_key" {
  type      = string
  default   = ""
  sensitive = true
}

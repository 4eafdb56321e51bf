# One GPU machine that runs a pipeline command (on all its GPUs) and writes its outputs to S3.
#
#   cd infrastructure/aws/single_gpu && terraform init
#   terraform apply -var repo_url=https://github.com/you/rlvr -var repo_ref=$(git rev-parse HEAD) \
#     -var 'run_args=model=hf model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct model.dtype=bfloat16'
#
# The machine publishes each new checkpoint of the run directory to s3://<bucket>/<run_name>/ (atomically: see
# infrastructure/scripts/s3_checkpoints.py) and everything when it stops, then terminates. After a spot
# interruption, apply again with the same run_name: the new machine restores the directory and the run resumes from
# its latest complete checkpoint.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

provider "aws" {
  region = var.region
}

module "storage" {
  source        = "../modules/storage"
  force_destroy = var.force_destroy
}

module "budget" {
  source    = "../modules/budget"
  name      = "rlvr-${var.run_name}"
  limit_usd = var.budget_usd
  email     = var.budget_email
}

module "machine" {
  source          = "../modules/node"
  name            = "rlvr-${var.run_name}"
  role            = "single"
  instance_type   = var.instance_type
  disk_gb         = var.disk_gb
  spot            = var.spot
  ami_name_filter = var.ami_name_filter
  subnet_id       = var.subnet_id
  ssh_cidr_blocks = var.ssh_cidr_blocks
  bucket          = module.storage.bucket
  bucket_arn      = module.storage.bucket_arn
  kms_key_arn     = module.storage.kms_key_arn
  run_name        = var.run_name
  secret_arns     = var.secret_arns
  boot = {
    repo_url     = var.repo_url
    repo_ref     = var.repo_ref
    run_args     = var.run_args
    accelerate   = var.accelerate
    keep_alive   = tostring(var.keep_alive)
    max_hours    = tostring(var.max_hours)
    idle_minutes = tostring(var.idle_minutes)
    stop_grace_s = tostring(var.stop_grace_s)
    head_address = ""
    workers      = "0"
    efs          = ""
  }
}

output "instance_id" {
  description = "Connect with: aws ssm start-session --target <instance_id>"
  value       = module.machine.instance_ids[0]
}

output "address" {
  value = module.machine.public_ips[0]
}

output "outputs" {
  description = "Where the run directory lands."
  value       = "s3://${module.storage.bucket}/${var.run_name}/"
}

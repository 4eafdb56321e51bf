# A small Ray cluster: a head (Ray head + the sweep's driver) and GPU workers. The head runs the sweep in run_args
# with hydra/launcher=ray_cluster: every job is a Ray task with its own GPU on a worker. All machines mount one
# encrypted EFS file system at the run directory, so every job writes where the sweep summary reads, and the head
# syncs it to S3.
#
# The head runs without GPU options (its default instance type has none); each worker's jobs get the spot notice
# (scripts/run.sh --ray-worker drains the worker, then signals its jobs, which checkpoint on EFS and exit; Ray
# retries them on the other workers, where they resume).
#
#   cd infrastructure/aws/ray_cluster && terraform init
#   terraform apply -var repo_url=https://github.com/you/rlvr -var repo_ref=$(git rev-parse HEAD) \
#     -var 'workers=4' -var 'run_args=train.learning_rate=1e-5,2e-5,5e-5,1e-4'

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

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

locals {
  subnet_id = coalesce(var.subnet_id, data.aws_subnets.default.ids[0])
  boot = {
    repo_url     = var.repo_url
    repo_ref     = var.repo_ref
    run_args     = var.run_args
    accelerate   = var.accelerate
    keep_alive   = tostring(var.keep_alive)
    max_hours    = tostring(var.max_hours)
    idle_minutes = tostring(var.idle_minutes)
    stop_grace_s = tostring(var.stop_grace_s)
    workers      = tostring(var.workers)
  }
}

# The machines of the cluster talk to each other (Ray's ports, NFS) and to nothing else inbound.
resource "aws_security_group" "cluster" {
  name_prefix = "rlvr-${var.run_name}-cluster-"
  description = "rlvr Ray cluster: traffic between its own machines"
  ingress {
    description = "Ray and NFS between the cluster's machines"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }
  egress {
    description = "Between the cluster's machines"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }
}

resource "aws_efs_file_system" "outputs" {
  encrypted  = true
  kms_key_id = module.storage.kms_key_arn
  tags       = { Name = "rlvr-${var.run_name}", project = "rlvr" }
}

resource "aws_efs_mount_target" "outputs" {
  file_system_id  = aws_efs_file_system.outputs.id
  subnet_id       = local.subnet_id
  security_groups = [aws_security_group.cluster.id]
}

module "head" {
  source                   = "../modules/node"
  name                     = "rlvr-${var.run_name}"
  role                     = "head"
  instance_type            = var.head_instance_type
  disk_gb                  = var.disk_gb
  spot                     = false # the driver of the sweep: an interruption would end every job
  ami_name_filter          = var.ami_name_filter
  subnet_id                = local.subnet_id
  extra_security_group_ids = [aws_security_group.cluster.id]
  ssh_cidr_blocks          = var.ssh_cidr_blocks
  bucket                   = module.storage.bucket
  bucket_arn               = module.storage.bucket_arn
  kms_key_arn              = module.storage.kms_key_arn
  run_name                 = var.run_name
  secret_arns              = var.secret_arns
  boot                     = merge(local.boot, { head_address = "", efs = aws_efs_file_system.outputs.dns_name })
}

module "workers" {
  source                   = "../modules/node"
  name                     = "rlvr-${var.run_name}"
  role                     = "worker"
  instance_count           = var.workers
  instance_type            = var.instance_type
  disk_gb                  = var.disk_gb
  spot                     = var.spot
  ami_name_filter          = var.ami_name_filter
  subnet_id                = local.subnet_id
  extra_security_group_ids = [aws_security_group.cluster.id]
  ssh_cidr_blocks          = var.ssh_cidr_blocks
  bucket                   = module.storage.bucket
  bucket_arn               = module.storage.bucket_arn
  kms_key_arn              = module.storage.kms_key_arn
  run_name                 = var.run_name
  secret_arns              = var.secret_arns
  boot = merge(local.boot, {
    head_address = module.head.private_ips[0]
    efs          = aws_efs_file_system.outputs.dns_name
  })
}

output "head_address" {
  description = "The Ray head's private address (ray dashboard on port 8265, through SSM port forwarding)."
  value       = module.head.private_ips[0]
}

output "head_instance_id" {
  value = module.head.instance_ids[0]
}

output "outputs" {
  description = "Where the sweep's directory lands."
  value       = "s3://${module.storage.bucket}/${var.run_name}/"
}

# One GPU machine on AWS that installs rlvr and runs a pipeline command, writing outputs to S3.
#
#   cd infrastructure/aws
#   terraform init
#   terraform apply -var 'key_name=my-key' -var 'run_args=model=hf model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct'
#
# The machine runs `python run_pipeline.py <run_args>` (or a Hydra sweep with `-m`) once at boot, syncs
# outputs/ and multirun/ to s3://<bucket>/<run_name>/ and shuts down unless keep_alive is true.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

provider "aws" {
  region = var.region
}

data "aws_ami" "dl" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = [var.ami_name_filter]
  }
}

resource "aws_s3_bucket" "outputs" {
  bucket_prefix = "rlvr-outputs-"
  force_destroy = false
}

resource "aws_iam_role" "runner" {
  name_prefix = "rlvr-runner-"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "outputs" {
  role = aws_iam_role.runner.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]
      Resource = [aws_s3_bucket.outputs.arn, "${aws_s3_bucket.outputs.arn}/*"]
    }]
  })
}

resource "aws_iam_instance_profile" "runner" {
  name_prefix = "rlvr-runner-"
  role        = aws_iam_role.runner.name
}

resource "aws_security_group" "ssh" {
  name_prefix = "rlvr-ssh-"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = var.ssh_cidr_blocks
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "gpu" {
  count                  = var.instance_count
  ami                    = data.aws_ami.dl.id
  instance_type          = var.instance_type
  key_name               = var.key_name
  iam_instance_profile   = aws_iam_instance_profile.runner.name
  vpc_security_group_ids = [aws_security_group.ssh.id]

  dynamic "instance_market_options" {
    for_each = var.spot ? [1] : []
    content {
      market_type = "spot"
    }
  }

  root_block_device {
    volume_size = var.disk_gb
    volume_type = "gp3"
  }

  user_data = templatefile("${path.module}/../cloud-init.sh.tftpl", {
    repo_url   = var.repo_url
    repo_ref   = var.repo_ref
    run_args   = var.run_args
    run_name   = "${var.run_name}-${count.index}"
    bucket     = aws_s3_bucket.outputs.bucket
    keep_alive = var.keep_alive
    wandb_key  = var.wandb_api_key
  })

  tags = { Name = "rlvr-${var.run_name}-${count.index}", project = "rlvr" }
}

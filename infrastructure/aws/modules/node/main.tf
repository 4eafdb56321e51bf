# Machines that boot into rlvr (cloud-init.sh.tftpl): one for a single run, or a Ray cluster's head and workers.
# No SSH by default (use SSM Session Manager: the role may do what Session Manager needs, nothing more of SSM);
# secrets are read at boot from Secrets Manager through the machine's role, so no key is in user-data or in the
# Terraform state. The role reaches only its run's prefix of the bucket; containers cannot reach the instance
# metadata (hop limit 1, and cloud-init's firewall rule for the host network). A shutdown terminates the machine.

variable "name" {
  description = "Name prefix of the resources."
  type        = string
}

variable "role" {
  description = "single (runs the pipeline), head (Ray head, runs the sweep) or worker (joins the head)."
  type        = string
  validation {
    condition     = contains(["single", "head", "worker"], var.role)
    error_message = "role is single, head or worker."
  }
}

variable "instance_count" {
  type    = number
  default = 1
}

variable "instance_type" {
  type = string
}

variable "disk_gb" {
  type = number
}

variable "spot" {
  type = bool
}

variable "ami_name_filter" {
  type = string
}

variable "subnet_id" {
  description = "Subnet to start in (null: the default VPC's default subnet)."
  type        = string
  default     = null
}

variable "extra_security_group_ids" {
  type    = list(string)
  default = []
}

variable "ssh_cidr_blocks" {
  description = "Addresses allowed to SSH in; empty (the default) opens no port at all."
  type        = list(string)
  default     = []
}

variable "bucket" {
  type = string
}

variable "bucket_arn" {
  type = string
}

variable "run_name" {
  description = "The run's prefix in the bucket: the only one the machines may read and write."
  type        = string
}

variable "kms_key_arn" {
  type = string
}

variable "secret_arns" {
  description = "Secrets Manager secrets the machines may read at boot (each a JSON map ENV_NAME: value)."
  type        = list(string)
  default     = []
}

variable "boot" {
  description = "Values for the boot script (repo, ref, run name, pipeline overrides, head address, ...)."
  type        = map(string)
}

data "aws_ami" "dl" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = [var.ami_name_filter]
  }
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "node" {
  statement {
    sid       = "RunOutputs" # push and pull (infrastructure/scripts/s3_checkpoints.py), rotated checkpoints deleted
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${var.bucket_arn}/${var.run_name}/*"]
  }
  statement {
    sid       = "ListRunOutputs"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.run_name}/*"]
    }
  }
  statement {
    sid       = "OutputsKey" # SSE-KMS: a data key to write, decryption to read and for multipart uploads
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    # What the SSM agent needs for Session Manager: registering this instance (instances of this account only; the
    # instance's own ARN would make the policy depend on the instance), and its session channels, which take no
    # resource-level permission. AmazonSSMManagedInstanceCore would also let the machine read every Parameter
    # Store value of the account.
    sid       = "SessionManagerRegister"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:*:${data.aws_caller_identity.current.account_id}:instance/*"]
  }
  statement {
    sid = "SessionManagerChannels"
    actions = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "Secrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }
}

resource "aws_iam_role_policy" "node" {
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.node.name
}

resource "aws_security_group" "node" {
  name_prefix = "${var.name}-"
  description = "rlvr ${var.role}: no inbound unless ssh_cidr_blocks is set; outbound HTTP(S) only"

  dynamic "ingress" {
    for_each = length(var.ssh_cidr_blocks) > 0 ? [1] : []
    content {
      description = "SSH from the allowed addresses only"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.ssh_cidr_blocks
    }
  }

  egress {
    description = "HTTPS: PyPI, git, container images, S3, Secrets Manager, SSM"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "HTTP: Ubuntu's apt mirrors"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "node" {
  count                  = var.instance_count
  ami                    = data.aws_ami.dl.id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  iam_instance_profile   = aws_iam_instance_profile.node.name
  vpc_security_group_ids = concat([aws_security_group.node.id], var.extra_security_group_ids)
  ebs_optimized          = true
  monitoring             = true
  # A shutdown (the run ended, the lifetime or idle watchdog, a failed boot) terminates: no stopped machine keeps
  # its disk billing.
  instance_initiated_shutdown_behavior = "terminate"

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only (the host polls it for a spot interruption notice)
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1 # a token cannot be had from a container's network namespace
    instance_metadata_tags      = "disabled"
  }

  dynamic "instance_market_options" {
    for_each = var.spot ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        instance_interruption_behavior = "terminate"
      }
    }
  }

  root_block_device {
    volume_size = var.disk_gb
    volume_type = "gp3"
    encrypted   = true
  }

  user_data = templatefile("${path.module}/../../../cloud-init.sh.tftpl", merge(var.boot, {
    role        = var.role
    bucket      = var.bucket
    run_name    = var.run_name
    secret_arns = join(" ", var.secret_arns)
  }))

  tags = { Name = "${var.name}-${var.role}-${count.index}", project = "rlvr" }
}

output "private_ips" {
  value = aws_instance.node[*].private_ip
}

output "public_ips" {
  value = aws_instance.node[*].public_ip
}

output "instance_ids" {
  value = aws_instance.node[*].id
}

output "security_group_id" {
  value = aws_security_group.node.id
}

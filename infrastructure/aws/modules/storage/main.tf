# The bucket a run's outputs land in: s3://<bucket>/<run_name>/. Versioned, KMS-encrypted, TLS only; old versions
# expire. Data is kept by default: with force_destroy=false `terraform destroy` stops at a bucket that holds
# outputs, and the key, which the bucket depends on, is destroyed only after the bucket is gone (an encrypted bucket
# never outlives its key). Deleting both on purpose: infrastructure/README.md.

variable "force_destroy" {
  description = "Allow terraform destroy to delete the bucket with the outputs in it (the roots default to false)."
  type        = bool
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted output version is kept."
  type        = number
  default     = 30
}

resource "aws_s3_bucket" "outputs" {
  bucket_prefix = "rlvr-outputs-"
  force_destroy = var.force_destroy
  # Destroyed before the key: if the bucket cannot go (it holds outputs), the key stays.
  depends_on = [aws_kms_key.outputs]
}

# Only TLS: a request over plain HTTP is refused, whoever makes it.
data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyPlainHTTP"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.outputs.arn, "${aws_s3_bucket.outputs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "outputs" {
  bucket     = aws_s3_bucket.outputs.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.outputs]
}

resource "aws_s3_bucket_public_access_block" "outputs" {
  bucket                  = aws_s3_bucket.outputs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "outputs" {
  bucket = aws_s3_bucket.outputs.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_caller_identity" "me" {}

resource "aws_kms_key" "outputs" {
  description             = "rlvr outputs"
  enable_key_rotation     = true
  deletion_window_in_days = 30 # the longest AWS allows: a key deleted by mistake can be restored for 30 days
  # The account administers the key; the machines' role gets use of it through its own IAM policy.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.me.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_s3_bucket_server_side_encryption_configuration" "outputs" {
  bucket = aws_s3_bucket.outputs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.outputs.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "outputs" {
  bucket = aws_s3_bucket.outputs.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

output "bucket" {
  value = aws_s3_bucket.outputs.bucket
}

output "bucket_arn" {
  value = aws_s3_bucket.outputs.arn
}

output "kms_key_arn" {
  value = aws_kms_key.outputs.arn
}

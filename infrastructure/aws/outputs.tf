output "public_ips" {
  value = aws_instance.gpu[*].public_ip
}

output "outputs_bucket" {
  value = aws_s3_bucket.outputs.bucket
}

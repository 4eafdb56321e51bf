variable "workers" {
  description = "GPU worker machines joining the Ray head."
  type        = number
  default     = 2
}

variable "head_instance_type" {
  description = "The head's instance type (it runs Ray's head and the sweep's driver, not the jobs)."
  type        = string
  default     = "m6i.xlarge"
}

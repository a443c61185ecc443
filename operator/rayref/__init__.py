"""rayref: mirror Alibaba Cloud EMR Serverless Spark Ray jobs and clusters into Kubernetes."""

__version__ = "0.1.0"

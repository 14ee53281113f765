"""Administration: tables from models (create, TTL, PITR, wait until active) and the IAM
policy the repositories need (`tables`, `iam`)."""

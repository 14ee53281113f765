"""Administration: tables from models (create, TTL, PITR, wait until active), the IAM
policy the repositories need (`tables`, `iam`), and the drift check of the live tables
against the models and the migration history (`drift`, `differences`)."""

"""DynamoDB's own rules, as leaves every layer above may use.

- `limits`: key, item, batch and number limits, checked before the wire;
- `expressions`: expression attribute names and values (reserved words never clash);
- `cursor`: signed, scoped page cursors;
- `idempotency`: the exactly-once markers of writes and their reconciliation.
"""

"""Tiers, a feature: ACR's SKUs as data (`tiers.py`), a registry's usage and changes of
tier with the limits on adding (`usage.py`: `require_room`, `require_feature`, which the
operations that add call inside their transactions), storage quotas (`quotas.py`: the
`StorageLimit` core's uploads keep to), request rate limits (`rate_limits.py`, applied
by `api/rate_limits.py`), and sizes as people write them (`sizes.py`). It imports no
other feature, so auth and the features that add what tiers count may import it; core
never does."""

"""The image lifecycle, a feature: the retention policy (`retention.py`), the soft
delete policy and its recycle bin (`soft_delete.py`; `Manifests` moves what a delete
takes into the bin while the policy is on), purges and their schedules (`purge.py`),
and the background job that applies them (`jobs.py`). Core never imports this
package."""

"""Alerts: a state machine over closed periods' statuses, and the channels that carry them.

`rules` decides (pure), `store` remembers (warehouse tables, the delivery log and its retry
bounds), `messages` words the alert for each channel within its limits, `channels` delivers
it with retries, and `run_failures` announces failed pipeline runs once per run.
"""

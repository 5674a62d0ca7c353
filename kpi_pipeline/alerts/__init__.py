"""Alerts: a state machine over closed periods' statuses, and the channels that carry them.

`rules` decides (pure), `store` remembers (warehouse tables), `messages` words the alert
for each channel and `channels` delivers it with retries.
"""

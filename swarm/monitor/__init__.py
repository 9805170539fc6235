"""Mafalda-monitor's web side: a live page of the swarm, its JSON API and Prometheus `/metrics`.

`state` turns a node's view into what the page shows (and keeps 10 minutes of
history), `rooms` publishes and reads the span of each room, `metrics` renders
the Prometheus text format, `http` serves all of it read-only behind a token.
"""

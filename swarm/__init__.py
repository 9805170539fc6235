"""Mafalda-swarm: libp2p membership, gossip of load and placements, and the CLI."""

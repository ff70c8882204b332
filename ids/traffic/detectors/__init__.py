"""The detectors of the traffic IDS, one module each; ``ids.traffic.engine`` wires them to the packet path."""

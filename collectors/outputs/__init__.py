"""Where collected records go: the MQTT bus (``MqttPublisher``) and the TSDB (``TsdbWriter``).

Both take ``monitor.envelope`` records through a synchronous, non-blocking call (``publish`` /
``write``) and do the network work in a background task, so a slow or absent broker or TSDB
never stalls a poller. See README.md beside this file for the topic tree, QoS/retain choices,
the line-protocol schema and the spool.
"""

from .mqtt import MqttPublisher, route, topic_level
from .spool import Spool, SpoolLocked
from .tsdb import RejectedSample, TsdbWriter, to_line

__all__ = ["MqttPublisher", "RejectedSample", "Spool", "SpoolLocked", "TsdbWriter", "route", "to_line",
           "topic_level"]

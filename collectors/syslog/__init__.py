"""Syslog collector: parse RFC 5424 / RFC 3164 (and Cisco) messages, extract firewall decisions, listen.

Other packages import from here only::

    from collectors.syslog import SyslogListener, parse_syslog, to_event
"""

from collectors.syslog.firewall import FirewallRecord, describe, lookup_device, parse_firewall, to_event
from collectors.syslog.listener import SyslogListener
from collectors.syslog.parse import JST, MAX_LENGTH, REASONS, SyslogError, SyslogMessage, parse_syslog

__all__ = [
    "JST",
    "MAX_LENGTH",
    "REASONS",
    "FirewallRecord",
    "SyslogError",
    "SyslogListener",
    "SyslogMessage",
    "describe",
    "lookup_device",
    "parse_firewall",
    "parse_syslog",
    "to_event",
]

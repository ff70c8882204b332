"""The incident report cascade (障害連絡の伝達: 初報・第2報・終報) with receipt tracking (受信確認).

The national centre issues reports on an incident to every prefecture (or a chosen
set); each prefecture's municipalities get them forwarded — by the prefecture, or
by Jukimon on its behalf. Every message is signed (Ed25519) and carries a signed
one-click confirm link; receipts also come from the console and over MQTT. The
tracker knows for every report and organisation what was sent, delivered and
confirmed, reminds the overdue, and shows who is missing. Others import from here::

    from alerting.cascade import open_cascade, Incident, Report, CascadeSettings, confirm_routes

    cascade = await open_cascade(store, inventory, settings, mqtt=("127.0.0.1", 1883))
    await cascade.issue(Incident("drill-2021", "処理装置Xのネットワーク切断", drill=True), Report(...))
    cascade.tracker.progress(report.id)        # counts, per prefecture, missing list
    await cascade.tick()                       # periodically: retry unsent, remind overdue
"""

from alerting.cascade.links import LinkClaim, LinkError, LinkSigner, generate_link_key, load_link_key
from alerting.cascade.model import (CascadeSettings, Channel, Delivery, Directory, Forwarding, Incident, Organisation,
                                    OrgTier, Report, load_addresses)
from alerting.cascade.mqtt_replies import MqttChannel, verify_report_payload
from alerting.cascade.sender import Cascade, MailComposer, SmtpPool, open_cascade
from alerting.cascade.signing import (Signer, Verification, generate_keypair, load_private_key, load_public_key,
                                      verify_message)
from alerting.cascade.store import CascadeStore
from alerting.cascade.tracker import Confirmation, ConfirmOutcome, Counts, Progress, Tracker
from alerting.cascade.web import confirm_app, confirm_routes

__all__ = [
    "Cascade", "CascadeSettings", "CascadeStore", "Channel", "ConfirmOutcome", "Confirmation", "Counts", "Delivery",
    "Directory", "Forwarding", "Incident", "LinkClaim", "LinkError", "LinkSigner", "MailComposer", "MqttChannel",
    "OrgTier", "Organisation", "Progress", "Report", "Signer", "SmtpPool", "Tracker", "Verification", "confirm_app",
    "confirm_routes", "generate_keypair", "generate_link_key", "load_addresses", "load_link_key", "load_private_key",
    "load_public_key", "open_cascade", "verify_message", "verify_report_payload",
]

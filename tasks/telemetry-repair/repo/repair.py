"""Network telemetry repair (the file you edit).

repair_network_telemetry(telemetry, topology) gets the reported counters of every interface
and returns, for each, (original, repaired, confidence) triples. The baseline is a Hodor-style
check: a link's two ends measure the same traffic (my tx = the peer's rx); when they disagree,
flow conservation at the two routers (sum of rx = sum of tx over a router's interfaces,
customer-facing `*_ext` interfaces included) decides which end to believe.
"""
from typing import Any, Dict, List, Tuple

SYMMETRY_TOLERANCE = 0.02  # relative gap within which my tx and the peer's rx agree
AGREE_BLEND = 0.0  # weight of the peer's reading in the repaired value of an agreeing pair
ZERO_RATE = 1.0  # Mbps; rates below this count as no traffic
CONF_AGREE = 0.95  # confidence of a counter its peer confirms
CONF_FLOW = 0.7  # confidence of a counter picked by flow conservation
CONF_UNCHECKED = 0.5  # confidence of a counter nothing could check
FLOW_TOLERANCE = 0.03  # relative router imbalance below which a router counts as balanced
CONF_STATUS = 0.9  # confidence of a status decision


def _gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), ZERO_RATE)


def repair_network_telemetry(telemetry: Dict[str, Dict[str, Any]],
                             topology: Dict[str, List[str]]) -> Dict[str, Dict[str, Tuple]]:
    est = {}
    conf = {}
    for if_id, d in telemetry.items():
        for f in ("rx_rate", "tx_rate"):
            est[(if_id, f)] = float(d.get(f) or 0.0)
            conf[(if_id, f)] = CONF_UNCHECKED

    def imbalance(router: str) -> float:
        ids = [i for i in topology.get(router, []) if i in telemetry]
        rx = sum(est[(i, "rx_rate")] for i in ids)
        tx = sum(est[(i, "tx_rate")] for i in ids)
        return _gap(rx, tx)

    # 1. link symmetry: (my tx, peer rx) measure one direction of one link
    disputed = []
    for if_id, d in telemetry.items():
        peer = d.get("connected_to")
        if peer not in telemetry:
            continue
        a, b = (if_id, "tx_rate"), (peer, "rx_rate")
        va, vb = est[a], est[b]
        if _gap(va, vb) <= SYMMETRY_TOLERANCE:
            est[a] = (1 - AGREE_BLEND) * va + AGREE_BLEND * vb
            est[b] = (1 - AGREE_BLEND) * vb + AGREE_BLEND * va
            conf[a] = conf[b] = CONF_AGREE
        else:
            disputed.append((a, b))

    # 2. flow conservation picks the side of a disputed pair that balances its routers best
    for a, b in disputed:
        va, vb = est[a], est[b]
        routers = {telemetry[a[0]].get("local_router"), telemetry[b[0]].get("local_router")}
        trial = []
        for v in (va, vb):
            est[a] = est[b] = v
            trial.append(sum(imbalance(r) for r in routers if r is not None))
        v = va if trial[0] <= trial[1] else vb
        est[a] = est[b] = v
        conf[a] = conf[b] = CONF_FLOW if abs(trial[0] - trial[1]) > FLOW_TOLERANCE else CONF_UNCHECKED

    # 3. an interface without a peer (customer-facing) absorbs its router's imbalance
    for router, ids in topology.items():
        lone = [i for i in ids if i in telemetry and telemetry[i].get("connected_to") not in telemetry]
        if len(lone) != 1 or imbalance(router) <= FLOW_TOLERANCE:
            for i in lone:
                if imbalance(router) <= FLOW_TOLERANCE:
                    conf[(i, "rx_rate")] = conf[(i, "tx_rate")] = CONF_AGREE
            continue
        i = lone[0]
        rx = sum(est[(j, "rx_rate")] for j in ids if j in telemetry)
        tx = sum(est[(j, "tx_rate")] for j in ids if j in telemetry)
        if rx > tx:  # either my rx reads too high or my tx too low
            f, v = ("tx_rate", est[(i, "tx_rate")] + rx - tx) if est[(i, "tx_rate")] < ZERO_RATE or \
                est[(i, "rx_rate")] < rx - tx else ("rx_rate", est[(i, "rx_rate")] - (rx - tx))
        else:
            f, v = ("rx_rate", est[(i, "rx_rate")] + tx - rx) if est[(i, "rx_rate")] < ZERO_RATE or \
                est[(i, "tx_rate")] < tx - rx else ("tx_rate", est[(i, "tx_rate")] - (tx - rx))
        est[(i, f)] = max(0.0, v)
        conf[(i, f)] = CONF_FLOW

    # 4. status: traffic on the link means it is up; a silent link whose peer says down is down
    result = {}
    for if_id, d in telemetry.items():
        status = d.get("interface_status", "up")
        peer = telemetry.get(d.get("connected_to")) if d.get("connected_to") in telemetry else None
        traffic = max(est[(if_id, "rx_rate")], est[(if_id, "tx_rate")])
        new_status = status
        if status == "down" and traffic > ZERO_RATE:
            new_status = "up"
        elif status == "up" and traffic <= ZERO_RATE and peer is not None \
                and peer.get("interface_status") == "down":
            new_status = "down"
        rx, tx = est[(if_id, "rx_rate")], est[(if_id, "tx_rate")]
        if new_status == "down":
            rx = tx = 0.0
        result[if_id] = {
            "rx_rate": (d.get("rx_rate"), rx, conf[(if_id, "rx_rate")]),
            "tx_rate": (d.get("tx_rate"), tx, conf[(if_id, "tx_rate")]),
            "interface_status": (status, new_status, CONF_STATUS),
            "connected_to": d.get("connected_to"),
            "local_router": d.get("local_router"),
            "remote_router": d.get("remote_router"),
        }
    return result


def run_repair(telemetry: Dict[str, Dict[str, Any]], topology: Dict[str, List[str]]) -> Dict[str, Dict[str, Tuple]]:
    """Entry point the evaluator calls (as published)."""
    return repair_network_telemetry(telemetry, topology)

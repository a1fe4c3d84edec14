#!/usr/bin/env python3
"""Turns criterion's results of `benches/codec.rs` into the Markdown tables of BENCHMARKS.md.

Usage: python3 benches/report.py [target/criterion]

Reads <dir>/<group>/<function>/new/{estimates,benchmark}.json and prints, per
group, packets per second from the median time per iteration, and the ratios
of ours to each peer (> 1: ours is faster).
"""

import json
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
PEERS = ["rumqttc_v4", "rumqttc_v5", "mqttrs"]


def load():
    groups = {}
    for group in sorted(os.listdir(ROOT)):
        gdir = os.path.join(ROOT, group)
        if not os.path.isdir(gdir) or group == "report":
            continue
        for func in os.listdir(gdir):
            new = os.path.join(gdir, func, "new")
            try:
                with open(os.path.join(new, "estimates.json")) as f:
                    est = json.load(f)
                with open(os.path.join(new, "benchmark.json")) as f:
                    bench = json.load(f)
            except FileNotFoundError:
                continue
            packets = bench["throughput"]["Elements"]
            ns = est["median"]["point_estimate"]
            groups.setdefault(bench["group_id"], {})[bench["function_id"]] = (
                packets / (ns * 1e-9),
                ns / packets,
            )
    return groups


def mps(x):
    return f"{x / 1e6:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}×"


SIZES = ["16B", "256B", "4KiB", "64KiB"]


def publish_decode(groups):
    for v, peers in (("v311", ["rumqttc_v4", "mqttrs"]), ("v5", ["rumqttc_v5"])):
        cols = ["ours_owned", "ours_bytes", "ours_slice"] + peers
        ratios = [("ours_owned", p) for p in peers] + (
            [("ours_slice", "mqttrs")] if "mqttrs" in peers else []
        )
        print(f"\n#### Decode PUBLISH, MQTT {'3.1.1' if v == 'v311' else '5.0'} (M packets/s; ratio ours/peer)\n")
        print("| QoS | payload | " + " | ".join(cols) + " | " + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
        print("|" + "---|" * (2 + len(cols) + len(ratios)))
        for q in ("0", "1"):
            for size in SIZES:
                g = groups.get(f"publish_decode_{v}_qos{q}_{size}")
                if not g:
                    continue
                row = [q, size] + [mps(g[c][0]) if c in g else "–" for c in cols]
                row += [ratio(g[a][0], g[b][0]) if a in g and b in g else "–" for a, b in ratios]
                print("| " + " | ".join(row) + " |")


def publish_encode(groups):
    for v, peers in (("v311", ["rumqttc_v4", "mqttrs"]), ("v5", ["rumqttc_v5"])):
        cols = ["ours_encode", "ours_encode_head"] + peers
        print(f"\n#### Encode PUBLISH, MQTT {'3.1.1' if v == 'v311' else '5.0'} (M packets/s; ratio ours/fastest peer)\n")
        print("| QoS | payload | " + " | ".join(cols) + " | encode / best peer | encode_head / best peer | encode_head ns/packet |")
        print("|" + "---|" * (2 + len(cols) + 3))
        for q in ("0", "1"):
            for size in SIZES:
                g = groups.get(f"publish_encode_{v}_qos{q}_{size}")
                if not g:
                    continue
                best = max(g[p][0] for p in peers if p in g)
                row = [q, size] + [mps(g[c][0]) if c in g else "–" for c in cols]
                row += [ratio(g["ours_encode"][0], best), ratio(g["ours_encode_head"][0], best)]
                row += [f"{g['ours_encode_head'][1]:.1f}"]
                print("| " + " | ".join(row) + " |")


def control(groups, kind, title):
    print(f"\n#### {title} (M packets/s; ratio ours/peer)\n")
    print("`ours` is the owned decoder (`Decoder::decode`) or `Packet::encode`.\n")
    print("| case | ours | ours_slice | rumqttc | mqttrs | ours / rumqttc | ours / mqttrs | ours_slice / mqttrs |")
    print("|---|---|---|---|---|---|---|---|")
    for op in ("decode", "encode"):
        for v in ("v311", "v5"):
            g = groups.get(f"{kind}_{op}_{v}")
            if not g:
                continue
            ours = g.get("ours_owned") or g.get("ours_encode")
            sl = g.get("ours_slice")
            rq = g.get("rumqttc_v4") or g.get("rumqttc_v5")
            mq = g.get("mqttrs")
            row = [
                f"{op} {'3.1.1' if v == 'v311' else '5.0'}",
                mps(ours[0]),
                mps(sl[0]) if sl else "–",
                mps(rq[0]) if rq else "–",
                mps(mq[0]) if mq else "–",
                ratio(ours[0], rq[0]) if rq else "–",
                ratio(ours[0], mq[0]) if mq else "–",
                ratio(sl[0], mq[0]) if sl and mq else "–",
            ]
            print("| " + " | ".join(row) + " |")


def main():
    groups = load()
    publish_decode(groups)
    publish_encode(groups)
    control(groups, "connect", "CONNECT")
    control(groups, "subscribe", "SUBSCRIBE (10 filters)")


if __name__ == "__main__":
    main()

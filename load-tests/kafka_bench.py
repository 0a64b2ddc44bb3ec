"""Kafka's share of a claim: the broker's CPU (and the clients') per event under the
pipeline's traffic, for client settings side by side in one run (`make bench-kafka`).

The pipeline's traffic: the relay publishes small batches as claims commit (acks=all,
idempotent, one flush per batch) and two consumer groups (the read models, the CQL balances)
read every event. At a few hundred claims a second the batches are small, so what the broker
does per request (a produce, a fetch) outweighs what it does per byte; the variants change
exactly that: compression (a compressed batch is decompressed by the broker to be validated)
and how long a fetch may wait for more (fetch.min.bytes / fetch.wait.max.ms).

Starts its own single-node Kafka (scripts/kafka.sh, in a temp dir), then, in rounds that
interleave the variants (so the box's drift falls on all alike): a fresh topic, EVENTS events of
~1 KB JSON produced at RATE events/s in batches every 10 ms, consumed by two groups at once;
CPU from /proc over the round (the broker's process; this process for producer and
consumers). Prints µs per event (median of the rounds) and the ratio to the first variant.

    .venv/bin/python load-tests/kafka_bench.py [--events 10000] [--rate 1000] [--rounds 3]
        [--partitions 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from bench_common import (
    ROOT,
    BenchError,
    cpu_snapshot,
    free_port,
    machine,
    machine_line,
    markdown_table,
    run_checked,
    run_main,
    tree_cpu,
)
from confluent_kafka import Consumer, Producer

from infrastructure.kafka.consumers import group_consumer_config

KAFKA_SH = ROOT / "scripts" / "kafka.sh"


@dataclass(frozen=True)
class Variant:
    name: str
    producer: dict[str, Any] = field(default_factory=dict)
    consumer: dict[str, Any] = field(default_factory=dict)
    partitions: int | None = None  # None: --partitions
    rate_factor: int = 1  # times --rate
    interval: float = 0.01  # s between the relay's batches


# What the relay and the projections set (command_service/relay/publisher.py,
# infrastructure/kafka/consumers.py) is the base; each variant overrides some of it ("now" is
# what they set since the fetch wait and the relay's batch interval; "before", what they did).
PRODUCER = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
WAIT = {"fetch.min.bytes": 262_144, "fetch.wait.max.ms": 50}
LZ4, NONE = {"compression.type": "lz4"}, {"compression.type": "none"}
AT_ONCE = {"fetch.wait.max.ms": 500, "fetch.min.bytes": 1}  # librdkafka's defaults
VARIANTS = (
    Variant("before: lz4, fetch at once, batches every 10 ms", LZ4, AT_ONCE),
    Variant("6 partitions", LZ4, AT_ONCE, partitions=6),
    Variant("no compression", NONE, AT_ONCE),
    Variant("fetch waits up to 50 ms", LZ4, WAIT),
    Variant("batches every 50 ms", LZ4, AT_ONCE, interval=0.05),
    Variant("now: batches every 50 ms, fetch waits 50 ms", LZ4, WAIT, interval=0.05),
    Variant("before, at 3x the rate", LZ4, AT_ONCE, rate_factor=3),
)


def _value(n: int) -> bytes:
    """About the size and shape of a claim's envelope."""
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "aggregate_id": str(uuid.uuid4()),
            "aggregate_type": "medcard",
            "event_type": "medcard.claim_adjudicated",
            "schema_version": 1,
            "version": n,
            "position": n,
            "timestamp": "2026-12-04T10:00:00.000000+00:00",
            "data": {
                "claim_id": str(uuid.uuid4()),
                "prescription_id": f"rx-{n}",
                "pharmacy_id": "pharmacy-1",
                "decision": "APPROVED",
                "total_amount": "350.00",
                "covered_amount": "315.00",
                "copayment_amount": "35.00",
                "month": "2026-12",
                "monthly_limit": "5000.00",
                "month_spent_after": "315.00",
                "remaining_after": "4685.00",
                "items": [],
                "postings": [
                    {"account": "insurer:healthpay", "amount": "-315.00"},
                    {"account": "pharmacy:pharmacy-1", "amount": "315.00"},
                ],
            },
            "metadata": {"correlation_id": str(uuid.uuid4()), "sub": "pharmacy-1"},
        }
    )


def _consume(brokers: str, topic: str, group: str, config: dict[str, Any], want: int) -> None:
    consumer = Consumer(group_consumer_config(brokers, group) | config)
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + 300
    try:
        while seen < want:
            if time.monotonic() > deadline:
                raise BenchError(f"{group} saw {seen} of {want} events in 300 s")
            seen += sum(1 for m in consumer.consume(500, 0.2) if m.error() is None)
    finally:
        consumer.close()


def _produce(brokers: str, topic: str, variant: Variant, events: int, rate: int) -> None:
    producer = Producer({"bootstrap.servers": brokers} | PRODUCER | variant.producer)
    values = [_value(n) for n in range(events)]
    start, sent = time.monotonic(), 0
    while sent < events:
        due = min(events, int((time.monotonic() - start) * rate) + 1)
        for n in range(sent, due):  # one relay batch: produce all, then wait for every ack
            producer.produce(topic, key=str(n % 2000).encode(), value=values[n])
        if producer.flush(30):
            raise BenchError("the broker did not acknowledge a batch within 30 s")
        sent = due
        time.sleep(variant.interval)


def _round(
    brokers: str, broker_pid: int, variant: Variant, args: argparse.Namespace
) -> tuple[float, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    data = Path(args.tmp) / "kafka"
    partitions = variant.partitions or args.partitions
    run_checked(["bash", KAFKA_SH, "topic", data, topic, str(partitions)])
    time.sleep(1.0)  # leaders elected
    before, client_before = cpu_snapshot(), time.process_time()
    consumers = [
        threading.Thread(
            target=_consume,
            args=(brokers, topic, f"g-{group}-{topic}", variant.consumer, args.events),
        )
        for group in ("read-models", "balances")
    ]
    for thread in consumers:
        thread.start()
    _produce(brokers, topic, variant, args.events, args.rate * variant.rate_factor)
    for thread in consumers:
        thread.join()
    after, client_after = cpu_snapshot(), time.process_time()
    broker = tree_cpu(after, [broker_pid]) - tree_cpu(before, [broker_pid])
    return broker / args.events * 1e6, (client_after - client_before) / args.events * 1e6


def _body(args: argparse.Namespace) -> tuple[int, bool]:
    data = Path(args.tmp) / "kafka"
    data.mkdir()
    out = run_checked(
        ["bash", KAFKA_SH, "start", data, str(free_port()), str(free_port())], timeout=300
    )
    brokers = out.strip().splitlines()[-1].strip()
    broker_pid = int((data / "kafka.pid").read_text().strip())
    results: dict[str, list[tuple[float, float]]] = {v.name: [] for v in VARIANTS}
    _round(brokers, broker_pid, VARIANTS[0], argparse.Namespace(**{**vars(args), "events": 500}))
    for n in range(args.rounds):
        for variant in VARIANTS:
            results[variant.name].append(_round(brokers, broker_pid, variant, args))
            broker, client = results[variant.name][-1]
            print(
                f"round {n + 1} {variant.name}: broker {broker:.0f}, clients {client:.0f} µs/event"
            )
    base = statistics.median(b for b, _ in results[VARIANTS[0].name])
    rows = []
    for variant in VARIANTS:
        broker = statistics.median(b for b, _ in results[variant.name])
        client = statistics.median(c for _, c in results[variant.name])
        rows.append((variant.name, f"{broker:.0f}", f"{client:.0f}", f"{broker / base:.2f}"))
    print()
    print(machine_line(machine()))
    print(
        f"{args.events} events of ~{len(_value(0))} B at {args.rate}/s, {args.partitions}"
        f" partitions unless named, two consumer groups, {args.rounds} rounds (medians)"
    )
    print(
        markdown_table(
            ("variant", "broker µs/event", "producer + consumers µs/event", "broker vs first"), rows
        )
    )
    return 0, False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=1000, help="events per second produced")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=24)
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    args.tmp = tempfile.mkdtemp(prefix="healthpay-kafka-bench-")
    data = Path(args.tmp) / "kafka"

    def close() -> None:
        if (data / "kafka.pid").exists():
            run_checked(["bash", KAFKA_SH, "stop", data])

    return run_main(
        "kafka bench", lambda: _body(args), close, Path(args.tmp), args.keep_temp, "logs"
    )


if __name__ == "__main__":
    sys.exit(main())

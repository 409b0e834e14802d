"""Broker gauges read at scrape time: queue depth, in-flight (unacked) messages, the oldest
in-flight message's age, and live workers per model.

Kombu's Redis transport keeps a delivered-but-unacked message in the `unacked` hash and its
delivery time in the `unacked_index` sorted set until the worker acks it; after the visibility
timeout it is redelivered. An oldest-unacked age near that timeout means duplicates are coming.
A queue's depth includes its direct list, and the in-flight count the messages workers hold from
those lists (core/direct_queue.py); those are not redelivered on a timeout, only when their
worker's heartbeat ends.
"""

from __future__ import annotations

import logging
import time

import redis
from kombu.transport.redis import Channel
from prometheus_client.core import GaugeMetricFamily

from api.served_models import live_workers, served_models
from core import direct_queue
from core.settings import Settings
from core.queue import BULK, INTERACTIVE, queue_name

log = logging.getLogger(__name__)


class BrokerCollector:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {family.name: family for family in (
            GaugeMetricFamily("rerankq_broker_up", "1 when Redis answered this scrape."),
            GaugeMetricFamily("rerankq_queue_depth", "Messages waiting in a queue (not yet delivered).",
                              labels=["queue", "model", "lane"]),
            GaugeMetricFamily("rerankq_queue_unacked_messages", "Messages delivered to workers and not yet acked."),
            GaugeMetricFamily("rerankq_queue_oldest_unacked_age_seconds",
                              "Age of the oldest delivered-but-unacked message (0 when none)."),
            GaugeMetricFamily("rerankq_broker_visibility_timeout_seconds",
                              "Unacked messages older than this are redelivered (RERANKQ_VISIBILITY_TIMEOUT_S)."),
            GaugeMetricFamily("rerankq_workers_ready", "Live workers with the model loaded and warm, per model.",
                              labels=["model"]),
        )}

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families().values())

    def collect(self) -> list[GaugeMetricFamily]:
        families = self._families()
        families["rerankq_broker_visibility_timeout_seconds"].add_metric([], self.settings.visibility_timeout_s)
        try:
            models = served_models(self.settings, live_workers(self.client))
            queues = [(model.id, lane, queue_name(model.id, lane)) for model in models for lane in (INTERACTIVE, BULK)]
            pipe = self.client.pipeline(transaction=False)
            for _model, _lane, queue in queues:
                pipe.llen(queue)
                pipe.llen(direct_queue.direct_list(queue))
            pipe.hlen(Channel.unacked_key)
            pipe.zrange(Channel.unacked_index_key, 0, 0, withscores=True)
            *lengths, unacked, oldest = pipe.execute()
            depths = [celery + direct for celery, direct in zip(lengths[::2], lengths[1::2])]
            unacked += direct_queue.held(self.client, [queue for _model, _lane, queue in queues])
        except redis.RedisError as error:
            log.warning("broker metrics unavailable: %s", error)
            families["rerankq_broker_up"].add_metric([], 0)
            return [families["rerankq_broker_up"], families["rerankq_broker_visibility_timeout_seconds"]]
        families["rerankq_broker_up"].add_metric([], 1)
        for (model_name, lane, queue), depth in zip(queues, depths):
            families["rerankq_queue_depth"].add_metric([queue, model_name, lane], depth)
        families["rerankq_queue_unacked_messages"].add_metric([], unacked)
        age = max(0.0, time.time() - oldest[0][1]) if oldest else 0.0
        families["rerankq_queue_oldest_unacked_age_seconds"].add_metric([], age)
        for model in models:
            families["rerankq_workers_ready"].add_metric([model.id], model.workers)
        return list(families.values())

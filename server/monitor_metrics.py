"""The monitoring figures as Prometheus metrics, made at scrape time from the drift windows' counts.

Cardinality stays sane for wide models: a model with more than WIDE features (a 784-pixel image) gets drift and
out-of-range series only for the TOP_FEATURES features that moved most, plus a summary (the largest and the mean
PSI, and out-of-range values over all features), unless --drift-all-features asks for every one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from zoo.core.contract import ModelCard
from zoo.core.reference import Reference, psi
from zoo.server.drift import TOP_BINS, DriftCounts

WIDE = 32  # features up to which every feature gets its own series
TOP_FEATURES = 10
NO_CLASS = "-1"  # the label value of rows that got no class (the `label` output's -1)

# (card, reference or None, counts) of each monitored version
Source = Callable[[], Iterable[tuple[ModelCard, Reference | None, DriftCounts]]]


class MonitorCollector:
    """A prometheus-client collector over the monitored versions' counts."""

    def __init__(self, source: Source, all_features: bool = False):
        self.source = source
        self.all_features = all_features

    def describe(self):
        return []  # made at scrape time: nothing to check at registration

    def collect(self):
        predictions = CounterMetricFamily(
            "zoo_predictions",
            "Rows answered, by predicted label (-1: no class), self-check rows excluded",
            labels=["model", "version", "label"],
        )
        psi_gauge = GaugeMetricFamily(
            "zoo_feature_drift_psi",
            "Population stability index of a feature over the drift window, against training",
            labels=["model", "version", "feature"],
        )
        psi_max = GaugeMetricFamily("zoo_feature_drift_psi_max", "Largest feature PSI over the drift window", labels=["model", "version"])
        psi_mean = GaugeMetricFamily("zoo_feature_drift_psi_mean", "Mean feature PSI over the drift window", labels=["model", "version"])
        outside = CounterMetricFamily(
            "zoo_inputs_out_of_range", "Input values outside the training range of their feature", labels=["model", "version", "feature"]
        )
        top = HistogramMetricFamily(
            "zoo_top_probability", "The highest class probability of each answered row", labels=["model", "version"]
        )
        for card, ref, counts in self.source():
            key = [card.name, str(card.version)]
            for i, count in enumerate(counts.labels.tolist()):
                if count:
                    predictions.add_metric([*key, NO_CLASS if i == 0 else card.class_names[i - 1]], count)
            cumulative = np.cumsum(counts.top).tolist()
            buckets = [(f"{(i + 1) / TOP_BINS:g}", float(c)) for i, c in enumerate(cumulative[:-1])] + [("+Inf", float(cumulative[-1]))]
            top.add_metric(key, buckets, sum_value=counts.top_sum)
            if ref is None or counts.bin_counts is None or counts.out_of_range is None:
                continue
            index = psi(counts.bin_counts, counts.window_rows, ref)
            psi_max.add_metric(key, float(index.max()))
            psi_mean.add_metric(key, float(index.mean()))
            every = self.all_features or card.num_features <= WIDE
            for f in range(card.num_features) if every else np.argsort(-index, kind="stable")[:TOP_FEATURES]:
                psi_gauge.add_metric([*key, card.feature_names[f]], float(index[f]))
            for f in range(card.num_features) if every else np.argsort(-counts.out_of_range, kind="stable")[:TOP_FEATURES]:
                outside.add_metric([*key, card.feature_names[f]], float(counts.out_of_range[f]))
            if not every:
                outside.add_metric([*key, "(all features)"], float(counts.out_of_range.sum()))
        yield from (predictions, psi_gauge, psi_max, psi_mean, outside, top)


class PayloadLogCollector:
    """The payload log's own counters: records written, dropped on a full queue, CloudEvents batches not delivered."""

    def __init__(self, payload_log):
        self.log = payload_log

    def describe(self):
        return []

    def collect(self):
        for name, help_text, value in (
            ("zoo_payload_log_records", "Payload log records written", self.log.written),
            (
                "zoo_payload_log_dropped",
                "Payload log records dropped because its queue was full (requests never wait for it)",
                self.log.dropped,
            ),
            ("zoo_payload_log_post_failures", "CloudEvents batches not delivered after every retry", self.log.post_failures),
        ):
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family

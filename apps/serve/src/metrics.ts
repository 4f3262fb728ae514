import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SchedulerStats } from './scheduler/scheduler.js';

// Token latencies on CPU backends range from milliseconds to seconds, hence the wide buckets.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The server's Prometheus metrics, in a registry of its own (so several servers can live in one process). */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mptjs_requests_total',
    help: 'HTTP requests by endpoint and status code.',
    labelNames: ['endpoint', 'status'] as const,
    registers: [this.registry],
  });
  readonly clientDisconnects = new Counter({
    name: 'mptjs_client_disconnects_total',
    help: 'Requests whose client closed the connection before the response was complete (also status="499").',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });
  readonly engineFailures = new Gauge({
    name: 'mptjs_engine_failed',
    help: '1 once the model engine is found broken (the server then exits), else 0.',
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({
    name: 'mptjs_prompt_tokens_total',
    help: 'Prompt tokens processed.',
    registers: [this.registry],
  });
  readonly completionTokens = new Counter({
    name: 'mptjs_completion_tokens_total',
    help: 'Tokens generated.',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'mptjs_queue_depth',
    help: 'Sequences waiting for a batch slot.',
    registers: [this.registry],
  });
  readonly runningBatch = new Gauge({
    name: 'mptjs_running_batch_size',
    help: 'Sequences in the running decode batch.',
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'mptjs_time_to_first_token_seconds',
    help: 'Time from a sequence being queued to its first generated token.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly interTokenLatency = new Histogram({
    name: 'mptjs_inter_token_latency_seconds',
    help: 'Time between consecutive generated tokens of a sequence.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  updateScheduler(stats: SchedulerStats): void {
    this.queueDepth.set(stats.waiting);
    this.runningBatch.set(stats.running);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

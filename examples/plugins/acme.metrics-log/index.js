// A reporting task: the host hands it a snapshot of the flow's metrics every
// period; it logs a summary line and warns when the queues hold too much.

const logMetrics = () => ({
  getInfo: () => ({
    name: 'LogMetrics',
    description: "Logs the flow's metrics: FlowFiles in and out per processor, what the queues hold",
    version: '1.0.0',
    tags: ['metrics', 'monitoring'],
    defaultPeriod: '30 sec',
    properties: [
      { name: 'Queue Warning', description: 'Warn when the queues hold at least this many FlowFiles', type: 'integer', defaultValue: '1000', required: true },
      { name: 'Top Processors', description: 'How many of the busiest processors to list', type: 'integer', defaultValue: '5', required: true },
    ],
  }),
  onTrigger(ctx, metrics) {
    const top = Number(ctx.getProperty('Top Processors').asInteger());
    const busiest = Object.entries(metrics.processors)
      .sort(([, a], [, b]) => b.out - a.out)
      .slice(0, top)
      .map(([id, p]) => ({ id, in: p.in, out: p.out, errors: p.errors }));
    const totals = Object.values(metrics.processors).reduce(
      (t, p) => ({ in: t.in + p.in, out: t.out + p.out, errors: t.errors + p.errors }),
      { in: 0, out: 0, errors: 0 },
    );
    ctx.logger.info('flow metrics', { queued: metrics.queued, queuedBytes: metrics.queuedBytes, ...totals, busiest });
    const limit = ctx.getProperty('Queue Warning').asInteger();
    if (metrics.queued >= limit) {
      ctx.logger.warn('the queues are filling up', { queued: metrics.queued, threshold: limit });
    }
  },
});

export default { reportingTasks: { LogMetrics: logMetrics } };

export { type SchedulerConfig, type SchedulerEntry, schedulers } from './registry.js';
export { scheduleMultiplier } from './schedulers.js';

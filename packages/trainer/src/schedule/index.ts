export { scheduleMultiplier } from './schedulers.js';

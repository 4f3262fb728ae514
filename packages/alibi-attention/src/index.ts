// Importing this package registers tfjs's gradient functions, so every model built on it can be differentiated.
import './backend/gradients.js';

export * from './backend/index.js';

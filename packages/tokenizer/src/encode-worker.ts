// Worker side of encodeBatch: builds its own tokenizer from the JSON text, then encodes chunks of texts and sends
// the ids back as one flat Int32Array (transferred, not copied).
import { Tokenizer } from './tokenizer/tokenizer.js';

interface EncodeRequest {
  type: 'encode';
  batch: number;
  chunk: number;
  texts: string[];
  addSpecialTokens: boolean;
}

type Post = (message: unknown, transfer: ArrayBuffer[]) => void;
let tokenizer: Tokenizer | null = null;

function handle(msg: { type: 'init'; json: string } | EncodeRequest, post: Post): void {
  if (msg.type === 'init') {
    tokenizer = Tokenizer.fromJSON(msg.json);
    return;
  }
  try {
    const tok = tokenizer as Tokenizer;
    const lengths = new Int32Array(msg.texts.length);
    const all: number[][] = msg.texts.map((t, i) => {
      const ids = tok.encode(t, { addSpecialTokens: msg.addSpecialTokens });
      lengths[i] = ids.length;
      return ids;
    });
    let total = 0;
    for (const n of lengths) total += n;
    const flat = new Int32Array(total);
    let at = 0;
    for (const ids of all) {
      flat.set(ids, at);
      at += ids.length;
    }
    post({ batch: msg.batch, chunk: msg.chunk, flat, lengths }, [flat.buffer, lengths.buffer]);
  } catch (err) {
    post({ batch: msg.batch, chunk: msg.chunk, error: (err as Error).message }, []);
  }
}

if (typeof process !== 'undefined' && process.versions?.node) {
  const { parentPort } = await import('node:worker_threads');
  parentPort?.on('message', (msg) => handle(msg, (m, t) => parentPort.postMessage(m, t)));
} else {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent) => void;
    postMessage: (m: unknown, t: ArrayBuffer[]) => void;
  };
  scope.onmessage = (e) => handle(e.data, (m, t) => scope.postMessage(m, t));
}

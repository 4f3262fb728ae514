// biome-ignore lint/suspicious/noExplicitAny: tests edit tokenizer.json documents freely
export type AnyJson = Record<string, any>;

/**
 * A box for secret values (bearer tokens, private keys) held in configuration. The value is
 * in a private field, so `JSON.stringify`, `console.log`, `String()` and Node's inspector
 * all print `[redacted]`; code that needs the value asks for it with `reveal()`.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret([redacted])';
  }
}

// What wait() needs of an object, whatever it is. Connection and Listener hand it out under
// the `waitable` symbol; wait() adapts a Bun subprocess itself.

export const waitable: unique symbol = Symbol("mpconn.waitable");

export interface Readiness {
  /** Throws the OSError a Python select() would meet: the object is closed, or can never become ready. */
  check(): void;
  /** Whether using it would not wait (a message or EOF to receive, a connection to accept, an exit). */
  ready(): boolean;
  /** Call `onChange` whenever readiness may have changed; returns a function that stops it. */
  watch(onChange: () => void): () => void;
  /** Let the event loop deliver what is already on its way before the first look. */
  settle(): Promise<unknown>;
  /** Names it in error messages. */
  describe(): string;
}

/** An object wait() takes. */
export interface HasReadiness {
  [waitable](): Readiness;
}

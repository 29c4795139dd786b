// The seeds' CPU model of an actor, in plain JavaScript: a mailbox (an async FIFO queue), a loop
// that awaits the next message, runs an async handler on it and queues the answer. The bench
// runs the doubler on it for reference: what an actor costs with no GPU and no runtime at all.

/** An unbounded FIFO whose `get` waits for the next item (asyncio.Queue's shape). */
class AsyncQueue {
  #items = [];
  #head = 0;
  #waiters = [];

  put(item) {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  get() {
    if (this.#head < this.#items.length) {
      const item = this.#items[this.#head++];
      // Drop the consumed prefix now and then: Array#shift on a million items is quadratic.
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve(item);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

const STOP = Symbol("stop");

/** One actor: `send` queues a message, `receive` resolves with the next answer, in order. */
export class JsActor {
  #mailbox = new AsyncQueue();
  #answers = new AsyncQueue();
  #running;

  /** @param {(message: any) => Promise<any>} handler */
  constructor(handler) {
    this.handler = handler;
    this.#running = this.#run();
  }

  async #run() {
    for (;;) {
      const message = await this.#mailbox.get();
      if (message === STOP) return;
      this.#answers.put(await this.handler(message));
    }
  }

  async send(message) {
    this.#mailbox.put(message);
  }

  receive() {
    return this.#answers.get();
  }

  /** Lets the queued messages through, then ends the loop. */
  async stop() {
    this.#mailbox.put(STOP);
    await this.#running;
  }
}

/** The doubler as an async handler: `{ value }` → `{ result: value * 2 }` (i32, as WGSL computes it). */
export const doubleHandler = async (message) => ({ result: Math.imul(message.value, 2) });

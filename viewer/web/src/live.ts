// The page's /ws connection: says hello with the session token, reconnects with back-off, and
// hands each server message to the listeners of its type.
export type Message = { type: string } & Record<string, unknown>;
type Listener = (m: Message) => void;

export class Live {
  private ws: WebSocket | null = null;
  private listeners = new Map<string, Set<Listener>>();
  private retryMs = 1000;
  private timer: number | undefined;
  private stopped = false;
  connected = false;
  onState: (connected: boolean) => void = () => {};

  constructor(private readonly token: string) {
    this.open();
  }

  on(type: string, f: Listener): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(f);
    return () => set?.delete(f);
  }

  send(m: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  close(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000, 'logout');
  }

  private open(): void {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token: this.token }));
    ws.onmessage = (e) => {
      let m: Message;
      try {
        m = JSON.parse(String(e.data)) as Message;
      } catch {
        return;
      }
      if (m.type === 'welcome') {
        this.connected = true;
        this.retryMs = 1000;
        this.onState(true);
      }
      this.listeners.get(m.type)?.forEach((f) => f(m));
    };
    ws.onclose = (e) => {
      this.connected = false;
      this.onState(false);
      // 4401/4403: the session is gone; reconnecting would not help.
      if (this.stopped || e.code === 4401 || e.code === 4403) return;
      this.timer = window.setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 30000);
    };
  }
}

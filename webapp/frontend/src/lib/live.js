// The live socket (`GET /ws`): auth first inside Telegram, then subscriptions; reconnects with
// capped exponential backoff and resubscribes. Messages reach `onMessage` as parsed objects.
import { initData } from "./telegram.js";

export function connectLive(subscriptions, onMessage, { onOpen } = {}) {
  let socket = null;
  let attempt = 0;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/ws`);
    socket.addEventListener("open", () => {
      attempt = 0;
      if (initData) socket.send(JSON.stringify({ op: "auth", initData }));
      for (const sub of subscriptions) socket.send(JSON.stringify({ op: "subscribe", ...sub }));
      if (onOpen) onOpen();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "ping") {
        socket.send(JSON.stringify({ op: "pong" }));
        return;
      }
      onMessage(message);
    });
    socket.addEventListener("close", () => {
      if (stopped) return;
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      timer = window.setTimeout(open, delay);
    });
  }

  open();
  return {
    /** One more subscription, now and after every reconnect. */
    subscribe(sub) {
      subscriptions.push(sub);
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ op: "subscribe", ...sub }));
    },
    close() {
      stopped = true;
      window.clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}

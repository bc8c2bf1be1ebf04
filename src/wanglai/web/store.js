// Application state: the session, conversations, loaded messages, people, wallet. Events from
// the log are applied here (idempotently: an event seen twice changes nothing); views subscribe.

const SESSION_KEY = "wanglai.session";

export class Store {
  constructor(api) {
    this.api = api;
    this.session = null; // {token, user, device_id}
    this.conversations = new Map(); // id -> Conversation
    this.messages = new Map(); // conv -> Map(seq -> Message)
    this.complete = new Set(); // convs whose history is loaded back to the start
    this.users = new Map(); // id -> User
    this.groups = new Map(); // conv -> Group
    this.transfers = new Map(); // id -> ChatTransfer
    this.packets = new Map(); // id -> RedPacket
    this.typing = new Map(); // conv -> Map(user -> until ms)
    this.media = new Map(); // hash -> Promise<object URL>
    this.balance = null;
    this.openConv = null;
    this.reader = null; // {conv, watching()}: the open chat, which reads what arrives while at its bottom
    this.listeners = new Set();
    this.pending = new Map(); // client_id -> {conv, text, reply_to}
  }

  // --- session -----------------------------------------------------------------------------

  loadSession() {
    try {
      this.session = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    } catch {
      this.session = null;
    }
    this.api.token = this.session?.token || null;
    return this.session;
  }

  saveSession(session) {
    this.session = session;
    this.api.token = session.token;
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  clearSession() {
    clearTimeout(this.cursorTimer); // a cursor saved late would outlive the session
    if (this.session) localStorage.removeItem(this.cursorKey());
    localStorage.removeItem(SESSION_KEY);
    this.session = null;
    this.api.token = null;
    this.conversations.clear();
    this.messages.clear();
    this.complete.clear();
    this.groups.clear();
    this.balance = null;
    this.openConv = null;
  }

  get me() {
    return this.session?.user;
  }

  cursorKey() {
    return `wanglai.cursor.${this.session.user.id}.${this.session.device_id}`;
  }

  get savedCursor() {
    const value = Number(localStorage.getItem(this.cursorKey()));
    return Number.isInteger(value) && value > 0 ? value : null;
  }

  saveCursor(seq) {
    clearTimeout(this.cursorTimer);
    this.cursorTimer = setTimeout(() => {
      if (this.session) localStorage.setItem(this.cursorKey(), String(seq));
    }, 200);
  }

  // --- change notification -----------------------------------------------------------------

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(topic, detail) {
    for (const fn of this.listeners) {
      try {
        fn(topic, detail);
      } catch (err) {
        console.error(err);
      }
    }
  }

  // --- people ------------------------------------------------------------------------------

  rememberUser(user) {
    if (user && user.id) this.users.set(user.id, { ...this.users.get(user.id), ...user });
  }

  userName(id) {
    if (id === 0) return "System";
    if (this.me && id === this.me.id) return this.me.name || "You";
    const user = this.users.get(id);
    if (!user) {
      this.fetchUser(id);
      return `User ${id}`;
    }
    return user.name || user.phone || `User ${id}`;
  }

  fetchUser(id) {
    if (this.users.has(id)) return;
    this.users.set(id, { id });
    this.api.get(`/v1/users/${id}`).then(
      (user) => {
        this.rememberUser(user);
        this.emit("users");
      },
      () => {},
    );
  }

  // --- conversations -----------------------------------------------------------------------

  async loadConversations() {
    const list = await this.api.get("/v1/conversations");
    this.conversations.clear();
    for (const conv of list) this.conversations.set(conv.id, conv);
    this.emit("conversations");
  }

  async refreshConversation(id) {
    try {
      const conv = await this.api.get(`/v1/conversations/${id}`);
      this.conversations.set(id, conv);
    } catch (err) {
      if (err.code === "conversation_not_found") this.conversations.delete(id);
    }
    this.emit("conversations");
  }

  convTitle(conv) {
    if (!conv) return "";
    if (conv.kind === "group") return conv.title || "Group";
    return conv.peer ? this.userName(conv.peer) : "Conversation";
  }

  sortedConversations() {
    const at = (c) => (c.last ? c.last.at : 0);
    return [...this.conversations.values()].sort((a, b) => at(b) - at(a) || b.id - a.id);
  }

  // --- messages ----------------------------------------------------------------------------

  convMessages(conv) {
    let map = this.messages.get(conv);
    if (!map) {
      map = new Map();
      this.messages.set(conv, map);
    }
    return map;
  }

  /** Load one page older than what is loaded; returns how many messages came. */
  async loadOlder(conv, limit = 50) {
    const map = this.convMessages(conv);
    const seqs = [...map.keys()];
    const before = seqs.length ? Math.min(...seqs) : undefined;
    const page = await this.api.get(`/v1/conversations/${conv}/messages`, { before, limit });
    for (const msg of page) if (!map.has(msg.seq)) map.set(msg.seq, msg);
    if (page.length < limit) this.complete.add(conv);
    this.emit("history", { conv, count: page.length });
    return page.length;
  }

  putMessage(msg) {
    const map = this.messages.get(msg.conv);
    if (map) map.set(msg.seq, msg);
    const conv = this.conversations.get(msg.conv);
    if (conv && (!conv.last || conv.last.seq <= msg.seq)) conv.last = msg;
  }

  // --- events ------------------------------------------------------------------------------

  apply(event) {
    const conv = event.conv !== undefined ? this.conversations.get(event.conv) : undefined;
    switch (event.type) {
      case "message": {
        const msg = event.message;
        if (!conv) {
          this.refreshConversation(event.conv);
          break;
        }
        const isNew = msg.seq > conv.seq;
        this.putMessage(msg);
        if (isNew) {
          conv.seq = msg.seq;
          const mine = this.me && msg.sender === this.me.id;
          if (mine) {
            conv.read_seq = Math.max(conv.read_seq, msg.seq);
            conv.unread = 0;
          } else if (!msg.recalled && !(this.reader?.conv === msg.conv && this.reader.watching())) {
            conv.unread = (conv.unread || 0) + 1; // not when the open chat shows it: it marks it read
          }
        }
        this.clearTyping(msg.conv, msg.sender);
        this.emit("message", msg);
        this.emit("conversations");
        break;
      }
      case "message.edit":
      case "message.recall":
        this.putMessage(event.message);
        this.emit("message", event.message);
        this.emit("conversations");
        break;
      case "read": {
        const { user, seq } = event.data;
        if (!conv) break;
        if (this.me && user === this.me.id) {
          conv.read_seq = Math.max(conv.read_seq || 0, seq);
          if (conv.read_seq >= conv.seq) conv.unread = 0;
          else this.refreshConversation(conv.id);
        } else {
          conv.peer_read_seq = Math.max(conv.peer_read_seq || 0, seq);
          conv.peer_delivered_seq = Math.max(conv.peer_delivered_seq || 0, seq);
          this.emit("receipts", conv.id);
        }
        this.emit("conversations");
        break;
      }
      case "delivered":
        if (conv) {
          conv.peer_delivered_seq = Math.max(conv.peer_delivered_seq || 0, event.data.seq);
          this.emit("receipts", conv.id);
        }
        break;
      case "conversation.updated": {
        const d = event.data;
        if (d.change === "muted" && conv) conv.muted = d.muted;
        if (d.change === "left" || d.change === "removed") {
          this.conversations.delete(d.conv);
          if (this.openConv === d.conv) this.emit("closed", d.conv);
        }
        this.emit("conversations");
        break;
      }
      case "friend.request":
      case "friend.accepted":
      case "friend.declined":
      case "friend.removed":
      case "block.changed":
        if (event.data?.user) this.rememberUser(event.data.user);
        this.emit("contacts");
        break;
      case "wallet.movement":
      case "funding.updated":
      case "merchant.paid":
      case "merchant.refunded":
        this.emit("wallet");
        break;
      case "transfer.updated":
        this.transfers.set(event.data.id, event.data);
        this.emit("cards");
        break;
      case "redpacket.claimed":
      case "redpacket.expired": {
        const old = this.packets.get(event.data.packet);
        if (old) this.refreshPacket(event.data.packet);
        break;
      }
      case "group.request":
        this.emit("group", event.conv);
        break;
      default:
        break; // unknown types: the cursor moves past them
    }
    if (event.conv !== undefined && this.groups.has(event.conv) && event.message?.kind === "system") {
      this.loadGroup(event.conv);
    }
  }

  async refreshPacket(id) {
    const packet = await this.api.get(`/v1/redpackets/${id}`);
    this.packets.set(id, packet);
    this.emit("cards");
    return packet;
  }

  async refreshTransfer(id) {
    const transfer = await this.api.get(`/v1/wallet/transfers/${id}`);
    this.transfers.set(id, transfer);
    this.emit("cards");
    return transfer;
  }

  async loadGroup(conv) {
    const group = await this.api.get(`/v1/groups/${conv}`);
    this.groups.set(conv, group);
    for (const m of group.members) if (m.name && !this.users.get(m.user)?.name) this.rememberUser({ id: m.user, name: m.name });
    const c = this.conversations.get(conv);
    if (c) {
      c.title = group.title;
      c.role = group.role;
    }
    this.emit("group", conv);
    this.emit("conversations");
    return group;
  }

  // --- typing ------------------------------------------------------------------------------

  typingFrame(frame) {
    let map = this.typing.get(frame.conv);
    if (!map) this.typing.set(frame.conv, (map = new Map()));
    map.set(frame.user, Date.now() + 5000);
    this.emit("typing", frame.conv);
    setTimeout(() => this.emit("typing", frame.conv), 5100);
  }

  clearTyping(conv, user) {
    const map = this.typing.get(conv);
    if (map && map.delete(user)) this.emit("typing", conv);
  }

  typers(conv) {
    const map = this.typing.get(conv);
    if (!map) return [];
    const now = Date.now();
    return [...map.entries()].filter(([, until]) => until > now).map(([user]) => user);
  }

  // --- media -------------------------------------------------------------------------------

  /** An object URL for a media hash, fetched once with the bearer token. */
  mediaUrl(hash) {
    let url = this.media.get(hash);
    if (!url) {
      url = this.api.request("GET", `/v1/media/${hash}`).then((blob) => URL.createObjectURL(blob));
      url.catch(() => this.media.delete(hash));
      this.media.set(hash, url);
    }
    return url;
  }

  // --- wallet ------------------------------------------------------------------------------

  async loadBalance() {
    this.balance = await this.api.get("/v1/wallet");
    this.emit("balance");
    return this.balance;
  }
}

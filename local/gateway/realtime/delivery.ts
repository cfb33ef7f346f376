/**
 * Delivery of committed broadcasts (rows of realtime.messages) to the channels joined on
 * their topic, as Realtime's MessageDispatcher fans them out: a private message reaches
 * private channels whose broadcast read was granted (a channel joined for presence alone
 * gets none), a public one public channels, as event `broadcast`.
 *
 * What only the stand-in does, before every delivery to a private channel (hosted Realtime
 * checks at join and on access_token refresh only):
 *  1. the channel's token must not have expired, else the channel is closed with Realtime's
 *     expiry message (the expiry timer in realtime.ts usually gets there first);
 *  2. the read check must still pass (cached per topic and claims, authorization.ts), else
 *     the channel is closed: "You no longer have permission to read from this Channel topic";
 *  3. private.record_realtime_delivery(topic, message_ids) runs as the subscriber and commits
 *     before anything is sent (fail closed). The function decides: an assigned coach's (or
 *     the service role's) receipt of a client's interactions is one audit.phi_access_log
 *     row for the batch; the subject's own receipt, or a topic that carries no PHI, records
 *     nothing and answers 0, after which the channel is not asked again for the same token;
 *     a caller who may not receive the topic is refused (42501) and the channel closed, which
 *     is how a coach whose assignment ended by the clock alone is cut off. Any other failure
 *     withholds the messages and closes the channel.
 *
 * A topic's messages go out one batch at a time in NOTIFY (commit) order: ids that arrive
 * while a batch is being delivered form the next batch (at most BATCH_SIZE), so a burst of
 * rows for one subscriber costs one audit call.
 */
import type postgres from "postgres";
import { asSubscriber, type Authorizer, cacheKey, type Claims, expiredMessage, isExpired, type Policies } from "./authorization.ts";
import { broadcast, type Message } from "./protocol.ts";

/** Most message ids fetched, audited and sent as one batch. */
export const BATCH_SIZE = 100;

/** Realtime's message when the database cannot answer. */
export const DATABASE_UNAVAILABLE = "Realtime was unable to connect to the project database";

/** Realtime's message when a refreshed check no longer grants the topic. */
export const noLongerPermitted = (topic: string) => `You no longer have permission to read from this Channel topic: ${topic}`;

/** What delivery needs to know about a joined channel. */
export interface Subscriber {
  /** The topic without `realtime:` (as realtime.messages rows carry it). */
  readonly topic: string;
  readonly isPrivate: boolean;
  /** The claims of the channel's current token (swapped by an accepted access_token). */
  readonly claims: Claims;
  /** A private channel's checks so far (join and access_token). */
  readonly policies: Policies;
  /** True once the channel was left or shut down. */
  readonly closed: boolean;
  /** Sends a frame on the channel. */
  send(m: Message): void;
  /** Sends Realtime's system error message and closes the channel (phx_close). */
  shutdown(message: string): void;
  /** The claims key for which the audit function answered 0 (nothing to record). */
  unaudited?: string;
}

/** One committed broadcast. */
interface Row {
  id: string;
  event: string;
  payload: unknown;
  private: boolean;
}

/** Queues committed broadcasts by topic and delivers them. */
export interface Delivery {
  /** A committed realtime.messages row (from the NOTIFY trigger). */
  enqueue(id: string, topic: string): void;
  /** Resolves once every queued message has been handled (tests, shutdown). */
  idle(): Promise<void>;
}

/** Builds the dispatcher over the gateway's pool (connected as `authenticator`). */
export function createDelivery(opts: {
  sql: postgres.Sql;
  authorizer: Authorizer;
  subscribers: (topic: string) => Subscriber[];
  log: (line: Record<string, unknown>) => void;
}): Delivery {
  const { sql, authorizer, subscribers, log } = opts;
  const pending = new Map<string, string[]>();
  const draining = new Map<string, Promise<void>>();

  async function drain(topic: string): Promise<void> {
    const queue = pending.get(topic)!;
    while (queue.length > 0) {
      const ids = queue.splice(0, BATCH_SIZE);
      try {
        await deliverBatch(topic, ids);
      } catch (err) {
        log({ level: "error", msg: "realtime delivery failed", topic, error: String(err) });
      }
    }
    pending.delete(topic);
    draining.delete(topic);
  }

  async function deliverBatch(topic: string, ids: string[]): Promise<void> {
    const subs = subscribers(topic);
    if (subs.length === 0) return;
    const found = await sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      return await tx<Row[]>`select id::text as id, event, payload, private from realtime.messages
                             where id = any(${sql.array(ids)}::uuid[]) and extension = 'broadcast'`;
    });
    const byId = new Map(found.map((r) => [r.id, r]));
    const rows = ids.map((id) => byId.get(id)).filter((r): r is Row => r !== undefined);
    await Promise.all(subs.map((s) => deliverTo(s, rows)));
  }

  async function deliverTo(s: Subscriber, all: Row[]): Promise<void> {
    if (s.isPrivate && s.policies.broadcast.read !== true) return;
    const rows = all.filter((r) => r.private === s.isPrivate);
    if (rows.length === 0) return;
    // If an access_token swapped the claims while we waited, check again with the new ones.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (s.closed) return;
      const claims = s.claims;
      if (isExpired(claims)) return s.shutdown(expiredMessage(claims.exp));
      if (s.isPrivate && !(await mayReceive(s, claims, rows.map((r) => r.id)))) return;
      if (s.closed) return;
      if (s.claims !== claims) continue;
      for (const r of rows) s.send(broadcast(`realtime:${s.topic}`, r));
      return;
    }
    s.shutdown(DATABASE_UNAVAILABLE);
  }

  /** Steps 2 and 3 of the module comment; false once the channel has been shut down. */
  async function mayReceive(s: Subscriber, claims: Claims, ids: string[]): Promise<boolean> {
    try {
      if (!(await authorizer.mayRead(s.topic, claims))) {
        s.shutdown(noLongerPermitted(s.topic));
        return false;
      }
      const key = cacheKey(s.topic, claims);
      if (s.unaudited === key) return true;
      const recorded = await recordDelivery(sql, claims, s.topic, ids);
      if (recorded === 0) s.unaudited = key;
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "42501") {
        authorizer.cache.set(s.topic, claims, false, authorizer.cache.generation);
        s.shutdown(noLongerPermitted(s.topic));
      } else {
        log({ level: "error", msg: "realtime: delivery withheld, the database did not answer", topic: s.topic, error: String(err) });
        s.shutdown(DATABASE_UNAVAILABLE);
      }
      return false;
    }
  }

  return {
    enqueue(id, topic) {
      let queue = pending.get(topic);
      if (!queue) pending.set(topic, queue = []);
      queue.push(id);
      // Started on the next microtask, so that notifications read together form one batch.
      if (!draining.has(topic)) draining.set(topic, Promise.resolve().then(() => drain(topic)));
    },
    async idle() {
      while (draining.size > 0) await Promise.all(draining.values());
    },
  };
}

/**
 * Calls private.record_realtime_delivery as the subscriber and commits; resolves with the
 * number of audit rows written (0 or 1). Rejects with SQLSTATE 42501 when the subscriber may
 * not receive the topic.
 */
export async function recordDelivery(sql: postgres.Sql, claims: Claims, topic: string, ids: string[]): Promise<number> {
  return await sql.begin(async (tx) => {
    await asSubscriber(tx, claims);
    const [{ n }] = await tx<{ n: number }[]>`select private.record_realtime_delivery(${topic}, ${sql.array(ids)}::uuid[]) as n`;
    return n;
  });
}

import { RecentMap } from './recent-map.js';

/** One offer of a claim-mode worker to take a task. */
export interface Offer {
  tid: string;
  group: string;
  workerId: string;
  /** Tasks running and queued at the worker when it offered. */
  load: number;
}

interface Round {
  offers: Offer[];
  timer: NodeJS.Timeout;
}

// How long the caller waits for the offers of a group's other known
// members after the first one, in ms. Every member offers, even a full one,
// so the window only runs out when a member is gone or its event loop is
// slow. A member that has not offered for MEMBER_TTL_MS is forgotten.
const OFFER_WINDOW_MS = 10;
// A group seen for the first time: how long its first rounds wait for
// members not yet known. Longer than the window, as the first tasks come
// in a burst, and on a busy machine a member that offers late would
// otherwise lose the whole burst to the one that offered first.
const LEARNING_WINDOW_MS = 100;
const MEMBER_TTL_MS = 10_000;
const DECIDED_ROUNDS = 4096;
const MAX_GROUPS = 1024;
// Members per group: more would be a flood of forged offers, not workers.
const MAX_MEMBERS = 1024;

/**
 * Claim mode, at the caller: gives each task to one offering worker of
 * each group. Racing offers would favour whichever member the broker or
 * the event loop serves first, so the caller collects the offers of the
 * members it knows (at most OFFER_WINDOW_MS after the first) and picks the
 * least loaded, counting its own tasks in flight there, ties at random.
 */
export class ClaimAssigner {
  // Per group; bounded, as any client that may write to this caller's
  // inbox can offer under made-up group names.
  private readonly members = new RecentMap<Map<string, number>>(MAX_GROUPS);
  private readonly learningUntil = new RecentMap<number>(MAX_GROUPS);
  private readonly rounds = new Map<string, Round>();
  /** Per task, the groups whose worker was chosen. */
  private readonly decided = new RecentMap<Set<string>>(DECIDED_ROUNDS);

  constructor(
    private readonly assign: (offer: Offer) => void,
    private readonly countInFlight: (workerId: string) => number,
  ) {}

  handleOffer(offer: Offer): void {
    const key = `${offer.tid}/${offer.group}`;
    const expected = this.rememberMember(offer);
    if (this.decided.get(offer.tid)?.has(offer.group)) {
      return;
    }

    let round = this.rounds.get(key);
    if (!round) {
      const learningLeft =
        (this.learningUntil.get(offer.group) ?? 0) - Date.now();
      const waitMs = Math.max(OFFER_WINDOW_MS, learningLeft);
      const timer = setTimeout(() => this.decide(key), waitMs);
      round = { offers: [], timer };
      this.rounds.set(key, round);
    }

    round.offers.push(offer);
    const isLearning = Date.now() < (this.learningUntil.get(offer.group) ?? 0);
    if (round.offers.length >= expected && !isLearning) {
      this.decide(key);
    }
  }

  /** Records the member; returns how many members the group has now. */
  private rememberMember(offer: Offer): number {
    let members = this.members.get(offer.group);
    if (!members) {
      // A group seen for the first time: its other members' offers are
      // still on their way, so its first rounds wait out the window.
      members = new Map();
      this.members.set(offer.group, members);
      this.learningUntil.set(offer.group, Date.now() + LEARNING_WINDOW_MS);
    }

    const now = Date.now();
    if (members.size < MAX_MEMBERS || members.has(offer.workerId)) {
      members.set(offer.workerId, now);
    }

    for (const [workerId, seenAt] of members) {
      if (now - seenAt > MEMBER_TTL_MS) {
        members.delete(workerId);
      }
    }

    return members.size;
  }

  private decide(key: string): void {
    const round = this.rounds.get(key);
    if (!round) {
      return;
    }

    clearTimeout(round.timer);
    this.rounds.delete(key);
    const chosen = this.pickLeastLoaded(round.offers);
    const groups = this.decided.get(chosen.tid) ?? new Set<string>();
    groups.add(chosen.group);
    this.decided.set(chosen.tid, groups);
    this.assign(chosen);
  }

  /** A task sent again (a retry) is offered and assigned anew. */
  forget(tid: string): void {
    this.decided.delete(tid);
  }

  private pickLeastLoaded(offers: Offer[]): Offer {
    const loadOf = (offer: Offer) =>
      offer.load + this.countInFlight(offer.workerId);
    const lowest = Math.min(...offers.map(loadOf));
    const best = offers.filter((offer) => loadOf(offer) === lowest);
    return best[Math.floor(Math.random() * best.length)];
  }
}

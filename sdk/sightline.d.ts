// Type declarations of the Sightline tracker. The event shapes match the server's event
// JSON Schema (GET /api/v1/schema/event.json, sightline.events.event_json_schema()); a test keeps the
// two in step.

/** The built-in event types (the server's EventType). */
export type EventType =
  | 'page_view'
  | 'page_exit'
  | 'scroll_depth'
  | 'product_view'
  | 'product_hover'
  | 'product_click'
  | 'product_compare'
  | 'product_wishlist'
  | 'affiliate_click'
  | 'affiliate_hover'
  | 'copied_coupon'
  | 'shared_product'
  | 'search_query'
  | 'search_filter'
  | 'search_sort'
  | 'zero_results'
  | 'click'
  | 'hover'
  | 'focus'
  | 'blur'
  | 'form_start'
  | 'form_submit'
  | 'form_abandon'
  | 'session_start'
  | 'session_end'
  | 'heartbeat'
  | 'idle_start'
  | 'idle_end'
  | 'js_error'
  | 'api_error'
  | 'slow_page'
  | 'experiment_exposure'

/**
 * A built-in type, or a custom event name: a letter, then letters, digits and `_ . : -`,
 * at most 64 characters (`^[A-Za-z][A-Za-z0-9_.:-]{0,63}$`).
 */
export type EventName = EventType | (string & {})

/** Free-form event properties: at most 64 keys, 3 levels deep, strings up to 1024 characters. */
export type Properties = Record<string, unknown>

/** One event as sent to the collector (the seed's BaseEvent) and as stored. */
export interface SightlineEvent {
  eventType: EventName
  /** Made by the tracker, `<page load's UUID>.<n>`: the server stores each eventId once. */
  eventId?: string
  /** Client time, milliseconds since the Unix epoch. */
  timestamp?: number
  /** Empty without analytics consent: the server then derives a cookieless session. */
  sessionId?: string
  /** Empty without analytics consent: the server then derives a cookieless visitor id. */
  visitorId?: string
  userId?: string
  /** The visitor's analytics consent: "granted", "denied" or "unknown" (undecided). */
  consent?: string
  pageUrl?: string
  pagePath?: string
  pageTitle?: string
  referrer?: string
  /** Filled by the server from the User-Agent header when empty. */
  userAgent?: string
  /** `<width>x<height>` of the screen. */
  screenResolution?: string
  /** `<width>x<height>` of the window's viewport. */
  viewport?: string
  /** desktop, mobile or tablet: parsed by the server from the user agent. */
  deviceType?: string
  os?: string
  browser?: string
  browserVersion?: string
  /** Read by the server from pageUrl's query string when the event has none. */
  utmSource?: string
  utmMedium?: string
  utmCampaign?: string
  utmTerm?: string
  utmContent?: string
  properties?: Properties
  // -- set by the server; whatever a client sends is replaced ----------------------------
  readonly siteId?: string
  /** When the collector received the event, milliseconds since the Unix epoch. */
  readonly serverTimestamp?: number
  readonly country?: string
  readonly region?: string
  readonly city?: string
  readonly referrerSource?: string
  readonly channel?: string
  /** Seconds from the session's first event to this one. */
  readonly sessionDuration?: number
}

/** The properties the server checks for `page_view` events. */
export interface PageViewProperties {
  loadTime?: number | null
  ttfb?: number | null
  fcp?: number | null
  lcp?: number | null
  fid?: number | null
  cls?: number | null
}

/** The properties the server checks for `product_view` events. */
export interface ProductViewProperties {
  productId: string
  productName?: string
  productSlug?: string
  productPrice?: number | null
  categoryId?: string
  categoryName?: string
  /** direct | search | category | recommendation | related (others are kept as sent) */
  source?: string
  timeOnPage?: number | null
}

/** The properties the server checks for `affiliate_click` events. */
export interface AffiliateClickProperties {
  productId: string
  productName?: string
  linkId?: string
  platform?: string
  price?: number | null
  /** hero | sidebar | inline | sticky (others are kept as sent) */
  position?: string
  ctaText?: string
  revenue?: number | null
}

/** The properties the server checks for `scroll_depth` events. */
export interface ScrollDepthProperties {
  /** The milestone reached: 25, 50, 75, 90 or 100 (% of the page's scrollable height). */
  depth: number
  maxDepth?: number | null
  pixelDepth?: number | null
  contentHeight?: number | null
}

/** What the tracker says about a request as a whole. */
export interface Metadata {
  sentAt?: number | null
  sdkVersion?: string
}

/** The body of POST /api/v1/analytics/collect and /collect/batch. */
export interface CollectRequest {
  events: SightlineEvent[]
  siteKey?: string
  metadata?: Metadata
}

export interface TrackerConfig {
  /** The site's public key (`sightline site add` prints it). */
  siteKey?: string
  /** The seed's name for siteKey. */
  apiKey?: string
  /**
   * Where events are posted. Default: `<base>api/v1/analytics/collect`, where the tracker
   * was loaded from `<base>sdk/v1/sightline.js` (so a proxied path prefix carries over);
   * without a script, the page's origin.
   */
  endpoint?: string
  /** Logs to the console and dispatches a `sightline:event` window event per event. */
  debug?: boolean
  /** Send as soon as this many events wait (default 10). */
  batchSize?: number
  /** Send waiting events after this many milliseconds (default 5000). */
  flushInterval?: number
  /** The share of page loads tracked, 0 to 1 (default 1). */
  sampleRate?: number
  /** Send nothing when the browser asks not to be tracked (DNT or GPC; default true). */
  respectDnt?: boolean
  /**
   * "cookieless" (default): track without storing anything on the device until analytics
   * consent is given, and nothing at all once it is refused. "required": send nothing
   * until setConsent({analytics: true}).
   */
  consent?: 'cookieless' | 'required'
  /** Capture page views, clicks, scrolling, forms, attention, errors, vitals (default true). */
  autoTrack?: boolean
  /** Links whose clicks are affiliate_click (default `[data-affiliate],[rel~=sponsored]`). */
  affiliateSelector?: string
  /** Milliseconds between heartbeats while the page is visible and in use (default 30000, 0: none). */
  heartbeatInterval?: number
  /** Milliseconds without input before idle_start (default 60000). */
  idleTimeout?: number
  /** A page whose load takes longer (ms) sends slow_page (default 3000). */
  slowPageThreshold?: number
  /** Most events kept while they cannot be sent (default 500; older ones go first). */
  maxQueue?: number
  /** Most js_error events per page load (default 10). */
  maxErrors?: number
  /** Properties every event carries (the experiments build keeps `$experiments` here). */
  props?: Properties
  /** Where experiment definitions are read. Default: the endpoint's `analytics/collect` -> `experiments/config`. */
  experimentsEndpoint?: string
  /** Milliseconds after which `experimentsReady` resolves even without definitions (default 1000). */
  experimentsTimeout?: number
}

export interface ConsentState {
  necessary: boolean
  /** null until the visitor decides. */
  analytics: boolean | null
  marketing: boolean
}

/** The seed's PrivacyManager: consent, stored on the device only once analytics is allowed. */
export interface PrivacyManager {
  getConsent(): ConsentState
  hasConsent(kind: keyof ConsentState): boolean
  /** Dispatches the `consent-updated` window event with the new state. */
  setConsent(consent: Partial<ConsentState>): void
}

/** A product: an id, or an object whose id, name, slug and price are sent as productId, ... */
export type ProductRef =
  | string
  | {
      id: string
      name?: string
      slug?: string
      price?: number
      categoryId?: string
      categoryName?: string
      [key: string]: unknown
    }

export interface AffiliateLink {
  id?: string
  platform?: string
  price?: number
  [key: string]: unknown
}

/** The tracker (the seed's AnalyticsTracker). No method ever throws. */
export interface Tracker {
  readonly config: TrackerConfig
  readonly privacy: PrivacyManager
  init(): void
  track(eventType: EventName, properties?: Properties): void
  trackPageView(properties?: Properties): void
  trackProductView(product: ProductRef, source?: string, properties?: Properties): void
  trackAffiliateClick(
    product: ProductRef,
    link?: AffiliateLink,
    position?: string,
    ctaText?: string,
    properties?: Properties
  ): void
  trackSearchQuery(query: string, resultsCount?: number, properties?: Properties): void
  trackSearchFilter(filter: string, value?: unknown, properties?: Properties): void
  trackSearchSort(sort: string, properties?: Properties): void
  trackZeroResults(query: string, properties?: Properties): void
  trackProductHover(product: ProductRef, properties?: Properties): void
  trackProductCompare(productIds: string[], properties?: Properties): void
  trackProductWishlist(product: ProductRef, action?: 'add' | 'remove', properties?: Properties): void
  trackCopiedCoupon(couponCode: string, product?: ProductRef, properties?: Properties): void
  trackSharedProduct(product: ProductRef, channel?: string, properties?: Properties): void
  /** The signed-in user's id (sent as userId), or an empty string to forget it. */
  identify(userId: string): void
  setConsent(consent: Partial<ConsentState>): void
  /** Sends what waits now; resolves when the server has answered (or a retry is due). */
  flush(): Promise<void>
  /** Sends session_end and what waits, then stops. */
  destroy(): void
  /**
   * With the experiments build (`sightline-experiments.js`, or installExperiments()): the
   * variant key this visitor sees in a running experiment, or null (not loaded yet, not
   * running, or not targeting this page). Synchronous; the first call on a targeted page
   * sends experiment_exposure.
   */
  getVariant?(experimentKey: string): string | null
  /** The variants this visitor was exposed to on this page, by experiment key. */
  getVariants?(): Record<string, string>
  /** Resolves (true when loaded) once experiment definitions are loaded or timed out. */
  experimentsReady?: Promise<boolean>
}

/** A tracker with the experiments installed. */
export interface ExperimentTracker extends Tracker {
  getVariant(experimentKey: string): string | null
  getVariants(): Record<string, string>
  experimentsReady: Promise<boolean>
}

/** Gives a tracker getVariant(), getVariants() and experimentsReady (npm build). */
export function installExperiments(tracker: Tracker): ExperimentTracker
/** The 32-bit assignment hash of (experiment key, visitor id), as the server computes it. */
export function assignmentHash(experimentKey: string, visitorId: string): number
/** The index of the variant a visitor sees for these integer weights. */
export function assignVariant(experimentKey: string, visitorId: string, weights: number[]): number

/** Creates the page's tracker once and starts it; later calls return the same tracker. */
export function initAnalytics(config?: TrackerConfig): Tracker
export function getTracker(): Tracker | null
/** A tracker of your own (not the page's): call init() to start it. */
export const AnalyticsTracker: {
  new (config?: TrackerConfig): Tracker
  (config?: TrackerConfig): Tracker
}
export function PrivacyManager(): PrivacyManager
/** crypto.randomUUID, with a fallback outside secure contexts (a blob URL's random UUID). */
export function uuid(): string
export const version: string

/** What the <script> build puts on window. */
export interface SightlineGlobal {
  initAnalytics: typeof initAnalytics
  getTracker: typeof getTracker
  AnalyticsTracker: typeof AnalyticsTracker
  PrivacyManager: typeof PrivacyManager
  version: string
  /** Present once sightline-experiments.js has run. */
  installExperiments?: typeof installExperiments
  assignVariant?: typeof assignVariant
}

declare global {
  interface Window {
    sightline: SightlineGlobal
  }
  interface WindowEventMap {
    'consent-updated': CustomEvent<Partial<ConsentState>>
    /** Every event the tracker queues, when `debug` is on. */
    'sightline:event': CustomEvent<SightlineEvent>
  }
}

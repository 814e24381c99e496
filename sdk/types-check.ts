// Compiled by `npm run check` (tsc, no output): the declarations hold together and read
// the way the README shows them.
import * as React from 'react'
import {
  AnalyticsTracker,
  getTracker,
  initAnalytics,
  installExperiments,
  type AffiliateClickProperties,
  type CollectRequest,
  type EventName,
  type SightlineEvent,
} from './sightline'
import { AnalyticsProvider, useAnalytics } from './react'

const tracker = initAnalytics({ siteKey: 'pk_example', consent: 'required', batchSize: 20 })
tracker.track('page_view')
tracker.track('newsletter_signup', { plan: 'weekly' })
tracker.trackProductView({ id: 'sku-1', name: 'Kettle', price: 30 }, 'search')
tracker.trackAffiliateClick({ id: 'sku-1' }, { id: 'l-1', platform: 'amazon', price: 30 }, 'hero', 'Buy')
tracker.trackSearchQuery('kettle', 0)
tracker.trackProductWishlist('sku-1', 'remove')
tracker.setConsent({ analytics: true })
const consent: boolean | null = tracker.privacy.getConsent().analytics
void tracker.flush().then(() => tracker.destroy())
const mine = new AnalyticsTracker({ endpoint: '/stats/collect' })
const same = getTracker() === tracker
const name: EventName = 'scroll_depth'
const event: SightlineEvent = { eventType: name, properties: { depth: 50 } }
const body: CollectRequest = { siteKey: 'pk_example', events: [event], metadata: { sentAt: 1, sdkVersion: '1' } }
const click: AffiliateClickProperties = { productId: 'sku-1', price: 30 }
addEventListener('consent-updated', (e) => e.detail.analytics)
addEventListener('sightline:event', (e) => e.detail.eventId)
window.sightline.initAnalytics({ siteKey: 'pk_example' })

function Buy(): React.ReactElement {
  const { trackAffiliateClick, trackEvent, tracker } = useAnalytics()
  trackEvent('buy_clicked')
  return React.createElement('button', { onClick: () => trackAffiliateClick('sku-1') }, tracker ? 'Buy' : '')
}
const app = React.createElement(AnalyticsProvider, { config: { siteKey: 'pk_example' } }, React.createElement(Buy))
void [consent, mine, same, body, click, app]
const experiments = installExperiments(tracker)
void experiments.experimentsReady.then((loaded: boolean) => {
  const variant: string | null = experiments.getVariant('checkout-cta')
  return loaded && variant
})

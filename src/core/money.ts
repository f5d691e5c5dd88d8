// An amount as people read it on a card: "€24,800.00" for an ISO 4217 currency, else the grouped
// number and whatever code the agent sent ("24,800 POINTS"). Every platform shows the same text.
// Never rounds: an amount finer than the currency's usual digits keeps its digits, so an
// approver is not shown "€0.00" for 0.004 EUR.

const ISO_CODES: ReadonlySet<string> = new Set(typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('currency') : []);

const MAX_DIGITS = 20;

// Building an Intl.NumberFormat costs tens of µs, more than every card of a pending proposal
// takes to format otherwise: one per ISO code (a bounded set), made on first use.
const byCurrency = new Map<string, Intl.NumberFormat>();
const plain = new Intl.NumberFormat('en', { maximumFractionDigits: MAX_DIGITS });

function currencyFormat(currency: string): Intl.NumberFormat {
  let f = byCurrency.get(currency);
  if (f === undefined) {
    f = new Intl.NumberFormat('en', { style: 'currency', currency, maximumFractionDigits: MAX_DIGITS });
    byCurrency.set(currency, f);
  }
  return f;
}

export function formatAmount(amount: number, currency: string): string {
  if (!Number.isFinite(amount)) return `${amount}${currency === '' ? '' : ` ${currency}`}`;
  if (ISO_CODES.has(currency)) return currencyFormat(currency).format(amount);
  const grouped = plain.format(amount);
  return currency === '' ? grouped : `${grouped} ${currency}`;
}

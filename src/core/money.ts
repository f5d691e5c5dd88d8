// An amount as people read it on a card: "€24,800.00" for an ISO 4217 currency, else the grouped
// number and whatever code the agent sent ("24,800 POINTS"). Every platform shows the same text.
// Never rounds: an amount finer than the currency's usual digits keeps its digits, so an
// approver is not shown "€0.00" for 0.004 EUR.

const ISO_CODES: ReadonlySet<string> = new Set(typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('currency') : []);

const MAX_DIGITS = 20;

export function formatAmount(amount: number, currency: string): string {
  if (!Number.isFinite(amount)) return `${amount}${currency === '' ? '' : ` ${currency}`}`;
  if (ISO_CODES.has(currency)) {
    return new Intl.NumberFormat('en', { style: 'currency', currency, maximumFractionDigits: MAX_DIGITS }).format(amount);
  }
  const grouped = new Intl.NumberFormat('en', { maximumFractionDigits: MAX_DIGITS }).format(amount);
  return currency === '' ? grouped : `${grouped} ${currency}`;
}

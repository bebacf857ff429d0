// A controller service and the processor that uses it, in one plugin: a
// sandboxed plugin's processors reach the services of their own plugin,
// made once in its sandbox and shared by every processor that names them.

const RATES = /^\s*[A-Za-z]{3}\s*=\s*\d+(\.\d+)?\s*(,\s*[A-Za-z]{3}\s*=\s*\d+(\.\d+)?\s*)*$/;

function parseRates(text) {
  const rates = new Map();
  for (const pair of text.split(',')) {
    const [code, rate] = pair.split('=').map((s) => s.trim());
    rates.set(code.toUpperCase(), Number(rate));
  }
  return rates;
}

const rateTable = () => {
  let rates = new Map();
  return {
    getInfo: () => ({
      name: 'RateTable',
      description: 'Exchange rates into one currency, from its Rates property',
      version: '1.1.0',
      tags: ['currency', 'lookup'],
      properties: [
        {
          name: 'Rates',
          description: 'CODE=rate pairs, comma separated: what one unit of each currency is worth',
          required: true,
          pattern: RATES.source.slice(1, -1),
          defaultValue: 'USD=1, EUR=1.08, GBP=1.27',
        },
      ],
    }),
    enable(ctx) {
      rates = parseRates(ctx.getProperty('Rates').asString());
      ctx.logger.info('rate table enabled', { currencies: rates.size });
    },
    disable() {
      rates = new Map();
    },
    /** The rate of a currency code, or undefined. */
    rate: (code) => rates.get(String(code).toUpperCase()),
  };
};

const convertCurrency = () => ({
  getInfo: () => ({
    name: 'ConvertCurrency',
    description: 'Converts the amount attribute with the rate of the currency attribute, from a RateTable service',
    version: '1.1.0',
    tags: ['currency'],
    properties: [
      { name: 'Rate Table', description: 'The RateTable controller service', type: 'controllerService', required: true },
      { name: 'Amount Attribute', description: 'Holds the amount', defaultValue: 'amount', required: true },
      { name: 'Currency Attribute', description: 'Holds the currency code', defaultValue: 'currency', required: true },
      { name: 'Output Attribute', description: 'Receives the converted amount', defaultValue: 'amount.converted', required: true },
    ],
    relationships: [
      { name: 'success', description: 'Converted' },
      { name: 'failure', description: 'No amount, or a currency the table does not know (see convert.error)' },
    ],
    inputRequirement: 'required',
    // 1.1.0 renamed "Target Attribute" to "Output Attribute": flows made with 1.0.0 are migrated
    migrations: [{ version: '1.1.0', rename: { 'Target Attribute': 'Output Attribute' } }],
  }),
  onTrigger(ctx, session) {
    const table = ctx.getControllerService(ctx.getProperty('Rate Table').asString());
    const amountAttr = ctx.getProperty('Amount Attribute').asString();
    const currencyAttr = ctx.getProperty('Currency Attribute').asString();
    const output = ctx.getProperty('Output Attribute').asString();
    for (let ff = session.get(); ff; ff = session.get()) {
      const amount = Number(ff.attributes[amountAttr]);
      const rate = table.rate(ff.attributes[currencyAttr] ?? '');
      if (ff.attributes[amountAttr] === undefined || !Number.isFinite(amount)) {
        session.transfer(session.putAttribute(ff, 'convert.error', `no number in "${amountAttr}"`), 'failure');
      } else if (rate === undefined) {
        session.transfer(session.putAttribute(ff, 'convert.error', `unknown currency "${ff.attributes[currencyAttr] ?? ''}"`), 'failure');
      } else {
        session.transfer(session.putAttribute(ff, output, (amount * rate).toFixed(2)), 'success');
      }
    }
    session.commit();
  },
});

export default {
  controllerServices: { RateTable: rateTable },
  processors: { ConvertCurrency: convertCurrency },
};

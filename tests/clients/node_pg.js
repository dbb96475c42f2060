// node-postgres (`pg` from npm), as Node BI back ends use it: parameters sent untyped, arrays as
// PostgreSQL array literals. Prints one JSON object; tests/it/clients.rs checks it.
const { Client } = require('pg');
(async () => {
  const c = new Client({ host: '127.0.0.1', port: +process.env.PORT, user: 'analyst', database: 'debtlens' });
  await c.connect();
  const one = async (sql, params) => (await c.query(sql, params)).rows;
  const out = {
    any: (await one('SELECT count(*) AS n FROM features WHERE team = ANY($1)', [['platform', 'checkout']]))[0].n,
    in_list: (await one("SELECT count(*) AS n FROM features WHERE team IN ('platform', 'checkout')"))[0].n,
    team: (await one('SELECT count(*) AS n FROM features WHERE team = $1', ['platform']))[0].n,
    since: (await one('SELECT count(*) AS n FROM features WHERE shipped_at >= $1', [new Date('2025-06-01T00:00:00Z')]))[0].n,
    unicode: (await one('SELECT count(*) AS n FROM features WHERE $1 = ANY(systems)', ['légacy-crm']))[0].n,
    view: (await one('SELECT system, features FROM slowdown_by_system ORDER BY system')).map(r => `${r.system}:${r.features}`).join(','),
  };
  await c.end();
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e.message); process.exit(1); });

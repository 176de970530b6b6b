// Row types of every table, as Kysely sees them; one interface per table, named after it.

/** Small named values that belong to the installation itself (the master key's check value, …). */
export interface MetaTable {
  name: string;
  value: string;
  updated_at: string;
}

export interface Database {
  meta: MetaTable;
}

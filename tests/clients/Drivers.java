// pgjdbc (DBeaver, Metabase, Tableau, DataGrip) against `debtlens serve`: the DatabaseMetaData
// calls these tools make while browsing, and parameters bound as they bind them. Prints one
// `key=value` line per answer; tests/it/clients.rs checks them against the CLI's.
import java.sql.*;
import java.util.*;

public class Drivers {
    static String rows(ResultSet rs, String... columns) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (String c : columns) row.add(rs.getString(c));
            out.add(String.join(":", row));
        }
        rs.close();
        return String.join(",", out);
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", "analyst");
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("PORT") + "/debtlens";
        try (Connection c = DriverManager.getConnection(url, p)) {
            DatabaseMetaData m = c.getMetaData();
            System.out.println("version=" + m.getDatabaseProductVersion());
            System.out.println("schemas=" + rows(m.getSchemas(), "TABLE_SCHEM"));
            System.out.println("tables=" + rows(m.getTables(null, "public", "%", new String[] {"TABLE"}), "TABLE_NAME"));
            System.out.println("columns=" + rows(m.getColumns(null, "public", "capacity", "%"), "COLUMN_NAME", "TYPE_NAME", "IS_NULLABLE"));
            System.out.println("primary_keys=" + rows(m.getPrimaryKeys(null, "public", "capacity"), "COLUMN_NAME", "KEY_SEQ", "PK_NAME"));
            System.out.println("indexes=" + rows(m.getIndexInfo(null, "public", "features", false, true), "INDEX_NAME", "COLUMN_NAME", "NON_UNIQUE"));
            System.out.println("imported_keys=" + rows(m.getImportedKeys(null, "public", "incidents"), "FKCOLUMN_NAME"));
            System.out.println("procedures=" + rows(m.getProcedures(null, "public", "%"), "PROCEDURE_NAME"));
            System.out.println("type_info=" + rows(m.getTypeInfo(), "TYPE_NAME", "DATA_TYPE"));
            try (PreparedStatement s = c.prepareStatement("SELECT count(*) FROM features WHERE shipped_at >= ?")) {
                s.setDate(1, java.sql.Date.valueOf("2025-06-01"));
                System.out.println("set_date=" + rows(s.executeQuery(), "count"));
            }
            try (PreparedStatement s = c.prepareStatement("SELECT count(*) FROM features WHERE team = ANY(?)")) {
                s.setArray(1, c.createArrayOf("text", new String[] {"platform", "checkout"}));
                System.out.println("any_array=" + rows(s.executeQuery(), "count"));
            }
            try (Statement s = c.createStatement()) {
                System.out.println("view=" + rows(s.executeQuery("SELECT system, features FROM slowdown_by_system ORDER BY system"), "system", "features"));
            }
            // ResultSetMetaData as DBeaver's and DataGrip's result editors read it: each column's
            // table and nullability (from the table OID and column number of the RowDescription),
            // for a plain statement and a prepared one.
            String sql = "SELECT f.feature_id, f.team AS owner, i.severity, f.estimated_weeks * 2 AS doubled, s.tax "
                + "FROM features f JOIN incidents i ON i.feature_id = f.feature_id "
                + "JOIN system_tax s ON s.system = i.system LIMIT 1";
            try (Statement s = c.createStatement(); PreparedStatement ps = c.prepareStatement(sql)) {
                for (ResultSet rs : new ResultSet[] {s.executeQuery(sql), ps.executeQuery()}) {
                    ResultSetMetaData md = rs.getMetaData();
                    List<String> cols = new ArrayList<>();
                    for (int k = 1; k <= md.getColumnCount(); k++) {
                        cols.add(md.getColumnName(k) + ":" + md.getTableName(k) + ":" + ((org.postgresql.PGResultSetMetaData) md).getBaseColumnName(k) + ":" + md.isNullable(k));
                    }
                    System.out.println((rs.getStatement() instanceof PreparedStatement ? "prepared_meta=" : "meta=") + String.join(",", cols));
                    rs.close();
                }
            }
        }
    }
}

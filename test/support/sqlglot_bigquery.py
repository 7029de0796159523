"""The BigQuery double's SQL side: parses BigQuery SQL with sqlglot, checks it, and rewrites it for DuckDB.

A long-lived process: one JSON request per stdin line, one JSON answer per stdout line.
  {"id": 1, "op": "ping"}                    -> {"id": 1, "ok": true, "result": {"sqlglot": "10.6.3"}}
  {"id": 2, "op": "prepare", "sql": "...", "project": "p", "tables": {"ds.t": "partition_col"},
   "scalars": {"name": {"type": "STRING", "value": "x"}}, "arrays": {"rows": "__param_rows"}}
      -> {"id": 2, "ok": true, "result": {"statements": [{"kind", "statementType", "tables", "parameters",
          "problems", "unprunedScans", "target", "creates", "duckdb"}]}}
A statement that sqlglot cannot parse answers {"ok": false, "error": "..."}.
Written for the sqlglot Debian ships (python3-sqlglot 10.x), whose BigQuery dialect parses every statement
the adapter emits but transpiles a few constructs wrongly for DuckDB; those are rewritten here.
"""

import json
import re
import sys

import sqlglot
from sqlglot import exp

# Functions GoogleSQL has (those a statement of this project may use); anything else is flagged.
BIGQUERY_FUNCTIONS = {
    "ABS", "AND", "ANY_VALUE", "CASE", "OR", "NOT", "IN", "BETWEEN", "EXISTS", "IS", "LIKE", "ARRAY_AGG", "AVG", "CAST", "CEIL", "COALESCE", "CONCAT", "COUNT", "COUNTIF",
    "CURRENT_DATE", "CURRENT_TIMESTAMP", "DATE", "DATE_ADD", "DATE_DIFF", "DATE_SUB", "DENSE_RANK", "DIV",
    "EXP", "EXTRACT", "FIRST_VALUE", "FLOOR", "FORMAT_DATE", "GREATEST", "IF", "IFNULL", "IS_INF", "IS_NAN",
    "LAG", "LAST_VALUE", "LEAD", "LEAST", "LENGTH", "LN", "LOGICAL_AND", "LOGICAL_OR", "LOWER", "MAX", "MIN",
    "MOD", "NULLIF", "PARSE_DATE", "PARSE_JSON", "POW", "RANK", "ROUND", "ROW_NUMBER", "SAFE_CAST",
    "SAFE_DIVIDE", "SQRT", "STDDEV", "STDDEV_POP", "STDDEV_SAMP", "STRING_AGG", "SUBSTR", "SUM",
    "TO_JSON_STRING", "TRIM", "TRUNC", "UNNEST", "UPPER", "VARIANCE", "VAR_POP", "VAR_SAMP",
}

# GoogleSQL's array subscripts, list[OFFSET(k)] and the like (0-based OFFSET, 1-based ORDINAL).
ARRAY_SUBSCRIPTS = {"OFFSET": 1, "SAFE_OFFSET": 1, "ORDINAL": 0, "SAFE_ORDINAL": 0}

# sqlglot's own names for some of the functions above.
SQLGLOT_NAMES = {"DATEDIFF": "DATE_DIFF", "DATEADD": "DATE_ADD", "DATESUB": "DATE_SUB", "STDDEVSAMP": "STDDEV_SAMP",
                 "STDDEVPOP": "STDDEV_POP", "VARIANCESAMP": "VAR_SAMP", "VARIANCEPOP": "VAR_POP",
                 "ROWNUMBER": "ROW_NUMBER", "ARRAYAGG": "ARRAY_AGG", "GROUPCONCAT": "STRING_AGG",
                 "SAFEDIVIDE": "SAFE_DIVIDE", "DATESTRTODATE": "DATE", "TSORDSTODATE": "DATE",
                 "POWER": "POW", "CEIL": "CEIL", "IFNULL": "IFNULL", "TRYCAST": "TRY_CAST"}

# Type names DuckDB or PostgreSQL know and GoogleSQL does not: sqlglot folds them into the same types.
FOREIGN_TYPES = re.compile(r"\bAS\s+(VARCHAR|TEXT|DOUBLE|REAL|FLOAT|HUGEINT|UBIGINT|BLOB|TIMESTAMPTZ|BOOLEAN)\b", re.I)
# A value written into the SQL that should have been a parameter: a date or a season label.
VALUE_LITERAL = re.compile(r"^\d{4}-\d{2}(-\d{2})?")

# BigQuery type names (CAST targets, parameter types) as DuckDB types, for the rewrite.
DUCKDB_TYPES = {"INT64": "BIGINT", "INTEGER": "BIGINT", "INT": "BIGINT", "BIGINT": "BIGINT", "FLOAT64": "DOUBLE",
                "FLOAT": "DOUBLE", "NUMERIC": "DOUBLE", "BIGNUMERIC": "DOUBLE", "STRING": "VARCHAR",
                "BOOL": "BOOLEAN", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ",
                "JSON": "VARCHAR", "BYTES": "BLOB"}


def strip_strings(sql):
    """The SQL with string literals, quoted identifiers and comments blanked, for textual checks."""
    return re.sub(r"'(?:[^'\\]|\\.)*'|`[^`]*`|\"(?:[^\"\\]|\\.)*\"|--[^\n]*|/\*.*?\*/", "''", sql, flags=re.S)


def table_parts(table, project):
    """(project, dataset, table) of a table reference in any of BigQuery's spellings."""
    parts = []
    for key in ("catalog", "db", "this"):
        node = table.args.get(key)
        if node is None:
            continue
        name = node.name if isinstance(node, exp.Identifier) else node.sql()
        parts.extend(name.split("."))
    if len(parts) == 2:
        return project, parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return None, None, parts[-1] if parts else None


def function_name(node):
    if isinstance(node, exp.Anonymous):
        return str(node.this).upper()
    name = type(node).__name__.upper()
    return SQLGLOT_NAMES.get(name, name)


def is_constant(node):
    """True for an expression BigQuery can fold before reading: parameters, literals, casts of them."""
    return node is not None and not any(isinstance(n, (exp.Column, exp.Select)) for n in walk(node))


def walk(node):
    for item in node.walk():
        yield item[0] if isinstance(item, tuple) else item


def partition_filtered(scope, column, names):
    """True when `scope` (a SELECT, or a DELETE) compares the table's partition column with a constant, in its
    own WHERE or JOIN ... ON (not in a nested subquery's), so that BigQuery prunes partitions."""
    conditions = []
    where = scope.args.get("where")
    if where is not None:
        conditions.append(where)
    for join in scope.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            conditions.append(on)
    own = scope if isinstance(scope, exp.Select) else None
    for cond in conditions:
        for node in walk(cond):
            if node.find_ancestor(exp.Select) is not own:
                continue
            if isinstance(node, (exp.EQ, exp.LT, exp.LTE, exp.GT, exp.GTE)):
                sides = [(node.this, node.expression), (node.expression, node.this)]
            elif isinstance(node, exp.Between):
                sides = [(node.this, exp.Tuple(expressions=[node.args["low"].copy(), node.args["high"].copy()]))]
            elif isinstance(node, exp.In):
                sides = [(node.this, exp.Tuple(expressions=[e.copy() for e in node.expressions]))] if node.expressions else []
            else:
                continue
            for col, other in sides:
                if (isinstance(col, exp.Column) and col.name == column
                        and (not col.table or col.table in names) and is_constant(other)):
                    return True
    return False


def analyse(statement, project, tables):
    problems = []
    refs = []
    unpruned = []
    ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        proj, dataset, name = table_parts(table, project)
        if dataset is None:
            if name not in ctes:
                problems.append(f"table {name} is neither a CTE nor qualified with its dataset")
            continue
        refs.append({"project": proj, "dataset": dataset, "table": name})
        column = tables.get(f"{dataset}.{name}")
        select = table.find_ancestor(exp.Select)
        # The table an INSERT writes is in no SELECT: only reads are checked here.
        if column is None or select is None:
            continue
        names = {name}
        alias = table.args.get("alias")
        if alias is not None and alias.name:
            names.add(alias.name)
        if not partition_filtered(select, column, names):
            unpruned.append(f"{dataset}.{name}")
    if isinstance(statement, exp.Delete):
        target = statement.this
        proj, dataset, name = table_parts(target, project)
        column = tables.get(f"{dataset}.{name}")
        if column and not (statement.args.get("where") is not None and partition_filtered(statement, column, {name})):
            problems.append(f"DELETE from {dataset}.{name} does not filter on its partition column {column}")
    for node in walk(statement):
        if isinstance(node, exp.Func) and not isinstance(node, exp.Cast):
            name = function_name(node)
            if name in ARRAY_SUBSCRIPTS and isinstance(node.parent, exp.Bracket):
                pass  # list[SAFE_OFFSET(k)]: an array subscript, which sqlglot reads as a function
            elif name not in BIGQUERY_FUNCTIONS:
                problems.append(f"function {name} is not GoogleSQL")
        if isinstance(node, exp.TryCast):
            problems.append("TRY_CAST is not GoogleSQL (SAFE_CAST is)")
        if isinstance(node, exp.Literal) and node.is_string and VALUE_LITERAL.match(node.this):
            problems.append(f"the value '{node.this}' is written into the SQL instead of a query parameter")
        if isinstance(node, exp.Identifier) and str(node.this).startswith("$"):
            problems.append(f"{node.this} is not a GoogleSQL parameter (write @name)")
    return refs, sorted(set(unpruned)), list(dict.fromkeys(problems))


def conjuncts(node):
    """The terms of a condition's top-level AND chain."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def pruning_terms(scope, column, names):
    """The conjuncts of `scope`'s own WHERE and JOIN ... ON that compare the partition column with a constant:
    the partitions BigQuery scans are those that satisfy all of them."""
    conditions = []
    if scope.args.get("where") is not None:
        conditions.append(scope.args["where"].this)
    for join in scope.args.get("joins") or []:
        if join.args.get("on") is not None:
            conditions.append(join.args["on"])
    terms = []
    for cond in conditions:
        for term in conjuncts(cond):
            if isinstance(term, (exp.EQ, exp.LT, exp.LTE, exp.GT, exp.GTE)):
                pairs = [(term.this, term.expression), (term.expression, term.this)]
            elif isinstance(term, exp.Between):
                pairs = [(term.this, exp.Tuple(expressions=[term.args["low"], term.args["high"]]))]
            elif isinstance(term, exp.In) and term.expressions:
                pairs = [(term.this, exp.Tuple(expressions=list(term.expressions)))]
            else:
                continue
            for col, other in pairs:
                if (isinstance(col, exp.Column) and col.name == column
                        and (not col.table or col.table in names) and is_constant(other)):
                    terms.append(term)
                    break
    return terms


def scans(statement, project, tables, scalars, arrays):
    """What each table read by the statement costs to scan, for bytes billed: the table, the columns the
    statement references from it (None: all of them), and the partitions it reads as a DuckDB condition on
    the partition column (None: the whole table). A DELETE's target also counts whole, in the partitions it
    deletes from (`whole`). https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax,
    "On-demand query size calculation"."""
    out = []
    ctes = {cte.alias for cte in statement.find_all(exp.CTE)}
    columns = list(statement.find_all(exp.Column))

    def condition(scope, column, names):
        terms = pruning_terms(scope, column, names) if column else []
        if not terms:
            return None
        parts = []
        for term in terms:
            term = term.copy()
            for col in list(term.find_all(exp.Column)):
                if col.name == column and (not col.table or col.table in names):
                    col.replace(exp.Column(this=exp.Identifier(this=column, quoted=True)))
            parts.append(f"({to_duckdb(term, project, scalars, arrays)})")
        return " AND ".join(parts)

    for table in statement.find_all(exp.Table):
        proj, dataset, name = table_parts(table, project)
        if dataset is None or name in ctes:
            continue
        select = table.find_ancestor(exp.Select)
        delete_target = isinstance(statement, exp.Delete) and table is statement.this
        if select is None and not delete_target:
            continue  # the table an INSERT writes
        names = {name}
        alias = table.args.get("alias")
        if alias is not None and alias.name:
            names.add(alias.name)
        every = any(isinstance(s.parent, exp.Select) and s.parent is select for s in select.find_all(exp.Star)) if select else False
        every = every or any(isinstance(c.this, exp.Star) and c.table in names for c in columns)
        used = None if every else sorted({c.name for c in columns if not isinstance(c.this, exp.Star)
                                          and (not c.table or c.table in names)})
        column = tables.get(f"{dataset}.{name}")
        out.append({"dataset": dataset, "table": name, "columns": used,
                    "where": condition(statement if delete_target else select, column, names),
                    "whole": delete_target})
    return out


def statement_kind(statement):
    for cls, kind in ((exp.Insert, "insert"), (exp.Delete, "delete"), (exp.Transaction, "begin"),
                      (exp.Commit, "commit"), (exp.Rollback, "rollback"), (exp.Select, "select"),
                      (exp.Union, "select"), (exp.Update, "update"), (exp.Create, "create"), (exp.Drop, "drop")):
        if isinstance(statement, cls):
            return kind
    return type(statement).__name__.lower()


def bigquery_statement_type(statement):
    """The statement's type as BigQuery's dry run reports it (JobStatistics2.statementType), for one statement."""
    if isinstance(statement, (exp.Select, exp.Union)):
        return "SELECT"
    for cls, name in ((exp.Insert, "INSERT"), (exp.Delete, "DELETE"), (exp.Update, "UPDATE"), (exp.Merge, "MERGE"),
                      (exp.AlterTable, "ALTER_TABLE"), (exp.Transaction, "BEGIN_TRANSACTION"),
                      (exp.Commit, "COMMIT_TRANSACTION"), (exp.Rollback, "ROLLBACK_TRANSACTION")):
        if isinstance(statement, cls):
            return name
    if isinstance(statement, exp.Create):
        kind = str(statement.args.get("kind") or "TABLE").upper()
        if kind == "TABLE" and statement.args.get("expression") is not None:
            return "CREATE_TABLE_AS_SELECT"
        return f"CREATE_{kind}"
    if isinstance(statement, exp.Drop):
        return f"DROP_{str(statement.args.get('kind') or 'TABLE').upper()}"
    if isinstance(statement, exp.Command):
        command = str(statement.this).upper()
        return "TRUNCATE_TABLE" if command == "TRUNCATE" else command
    return statement_kind(statement).upper()


def typed_literal(param):
    """A DuckDB expression for a scalar query parameter, typed as BigQuery types it."""
    kind = param["type"]
    value = param.get("value")
    duck = DUCKDB_TYPES.get(kind)
    if duck is None:
        raise ValueError(f"parameter type {kind} is not supported by the double")
    if value is None:
        return exp.Cast(this=exp.Null(), to=exp.DataType.build(duck))
    if kind == "STRING":
        # An untyped string literal: DuckDB coerces it where a DATE or TIMESTAMP is expected, as BigQuery
        # coerces a STRING query parameter.
        return exp.Literal.string(str(value))
    if kind in ("BOOL", "BOOLEAN"):
        return exp.Boolean(this=str(value).lower() == "true")
    return exp.Cast(this=exp.Literal.string(str(value)), to=exp.DataType.build(duck))


def to_duckdb(statement, project, scalars, arrays):
    """Rewrites one parsed BigQuery statement into DuckDB SQL."""
    kind = statement_kind(statement)
    if kind == "begin":
        return "BEGIN TRANSACTION"
    if kind in ("commit", "rollback"):
        return kind.upper()

    def rewrite(node):
        if isinstance(node, exp.Table):
            proj, dataset, name = table_parts(node, project)
            if dataset is None:
                return node
            if proj != project:
                raise ValueError(f"table {proj}.{dataset}.{name} is not in project {project}")
            out = exp.Table(this=exp.Identifier(this=name, quoted=True), db=exp.Identifier(this=dataset, quoted=True))
            if node.args.get("alias") is not None:
                out.set("alias", node.args["alias"])
            return out
        if isinstance(node, exp.Unnest) and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Parameter):
            name = node.expressions[0].name
            if name not in arrays:
                raise ValueError(f"UNNEST(@{name}): no ARRAY parameter named {name}")
            out = exp.Table(this=exp.Identifier(this=arrays[name], quoted=True))
            alias = node.args.get("alias")
            if alias is not None:
                label = alias.name or (alias.args.get("columns") or [None])[0]
                if label is not None:
                    out.set("alias", exp.TableAlias(this=exp.to_identifier(label if isinstance(label, str) else label.name)))
            return out
        if isinstance(node, exp.Unnest) and node.find_ancestor(exp.From, exp.Join) is not None:
            # FROM UNNEST(list) AS v [WITH OFFSET AS o]: DuckDB unnests in a select list, zipping lists of
            # one length, so the offsets come from a second list of the same length.
            alias = node.args.get("alias")
            columns = (alias.args.get("columns") or []) if alias is not None else []
            value = columns[0].name if columns else (alias.name if alias is not None and alias.name else "value")
            offset = node.args.get("offset")
            lst = duck(node.expressions[0])
            parts = [f"UNNEST({lst}) AS {value}"]
            if offset is not None:
                parts.append(f"UNNEST(range(len({lst}))) AS {offset.name if isinstance(offset, exp.Expression) else 'offset'}")
            return exp.Var(this=f"(SELECT {', '.join(parts)}) AS _unnest_{value}")
        if (isinstance(node, exp.Bracket) and len(node.expressions) == 1
                and isinstance(node.expressions[0], exp.Anonymous)
                and function_name(node.expressions[0]) in ARRAY_SUBSCRIPTS):
            # DuckDB lists are 1-based, and an index past the end gives NULL, as SAFE_OFFSET does.
            subscript = node.expressions[0]
            shift = ARRAY_SUBSCRIPTS[function_name(subscript)]
            return exp.Var(this=f"({duck(node.this)})[({duck(subscript.expressions[0])}) + {shift}]")
        if isinstance(node, exp.ArrayAgg):
            # ARRAY_AGG(x [IGNORE NULLS] [ORDER BY ...] [LIMIT n]) as DuckDB's array_agg, filtered and sliced.
            inner, limit, order, ignore = node.this, None, None, False
            if isinstance(inner, exp.Limit):
                limit, inner = inner.expression, inner.this
            if isinstance(inner, exp.Order):
                order, inner = inner, inner.this
            if isinstance(inner, exp.IgnoreNulls):
                ignore, inner = True, inner.this
            value = duck(inner)
            text = f"array_agg({value}"
            if order is not None:
                text += " ORDER BY " + ", ".join(duck(o) for o in order.expressions)
            text += ")"
            if ignore:
                text += f" FILTER (WHERE {value} IS NOT NULL)"
            if limit is not None:
                text = f"list_slice({text}, 1, {duck(limit)})"
            return exp.Var(this=text)
        if isinstance(node, exp.Parameter):
            name = node.name
            if name not in scalars:
                raise ValueError(f"Query parameter '{name}' not found")
            return typed_literal(scalars[name])
        if isinstance(node, exp.DateDiff):
            unit = node.args.get("unit")
            return exp.Anonymous(this="date_diff", expressions=[
                exp.Literal.string((unit.name if unit is not None else "DAY").lower()), sub(node.expression), sub(node.this)])
        if isinstance(node, exp.DateAdd):
            unit = node.args.get("unit")
            interval = exp.Anonymous(this=f"to_{(unit.name if unit is not None else 'DAY').lower()}s",
                                     expressions=[exp.Cast(this=sub(node.expression), to=exp.DataType.build("INT"))])
            return exp.Cast(this=exp.Anonymous(this="date_add", expressions=[sub(node.this), interval]),
                            to=exp.DataType.build("DATE"))
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name == "SAFE_CAST" and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Alias):
                target = node.expressions[0].alias.upper()
                return exp.TryCast(this=sub(node.expressions[0].this), to=exp.DataType.build(DUCKDB_TYPES.get(target, target)))
            if name in ("IS_NAN", "IS_INF"):
                return exp.Anonymous(this="isnan" if name == "IS_NAN" else "isinf", expressions=[sub(e) for e in node.expressions])
        if isinstance(node, exp.Literal) and not node.is_string and re.search(r"[.eE]", node.this):
            # A GoogleSQL literal with a point is FLOAT64; DuckDB would read it as a DECIMAL.
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
        return node

    def sub(node):
        # A rewrite that builds a new node must rewrite the children it keeps: transform() stops there.
        return node.transform(rewrite)

    def duck(node):
        return sub(node).sql(dialect="duckdb")

    return statement.transform(rewrite).sql(dialect="duckdb")


def prepare(request):
    sql = request["sql"]
    project = request["project"]
    tables = request.get("tables", {})
    statements = sqlglot.parse(sql, read="bigquery")
    out = []
    stripped = strip_strings(sql)
    text_problems = []
    if "::" in stripped:
        text_problems.append(":: casts are not GoogleSQL (write CAST(x AS type))")
    for match in FOREIGN_TYPES.finditer(stripped):
        text_problems.append(f"type {match.group(1).upper()} is not a GoogleSQL type")
    for statement in statements:
        if statement is None:
            continue
        refs, unpruned, problems = analyse(statement, project, tables)
        entry = {
            "kind": statement_kind(statement),
            "statementType": bigquery_statement_type(statement),
            "tables": refs,
            "parameters": sorted({p.name for p in statement.find_all(exp.Parameter)}),
            "problems": problems,
            "unprunedScans": unpruned,
        }
        if isinstance(statement, (exp.Insert, exp.Delete)):
            target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            proj, dataset, name = table_parts(target, project)
            entry["target"] = {"project": proj, "dataset": dataset, "table": name}
        if isinstance(statement, exp.Create) and isinstance(statement.this, (exp.Schema, exp.Table)):
            created = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
            if isinstance(created, exp.Table):
                proj, dataset, name = table_parts(created, project)
                entry["creates"] = {"project": proj, "dataset": dataset, "table": name}
        if request.get("transpile", True):
            scalars, arrays = request.get("scalars", {}), request.get("arrays", {})
            entry["duckdb"] = to_duckdb(statement, project, scalars, arrays)
            entry["scans"] = scans(statement, project, tables, scalars, arrays)
        out.append(entry)
    if out:
        out[0]["problems"] = text_problems + out[0]["problems"]
    return {"statements": out}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        try:
            if request["op"] == "ping":
                result = {"sqlglot": sqlglot.__version__}
            elif request["op"] == "prepare":
                result = prepare(request)
            else:
                raise ValueError(f"unknown op {request['op']}")
            answer = {"id": request["id"], "ok": True, "result": result}
        except Exception as err:  # every failure goes back to the caller, with its kind
            answer = {"id": request["id"], "ok": False, "error": f"{type(err).__name__}: {err}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

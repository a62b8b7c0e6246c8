/* placeholder replaced by the daemon's entry point in the next commit */
int main(void);
int main(void)
{
	return 0;
}
